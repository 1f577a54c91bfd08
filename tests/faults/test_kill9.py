"""kill -9 of `fc-balances run` at random points, then a normal run: the warehouse ends as a clean run leaves it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.faults.harness import KillScenario, Reference, kill_trial, reference_run, spread_delays

KILL_POINTS = 3
# Reproduce a failure with FC_FAULTS_SEED=<the seed in its message>.
SEED = int(os.environ.get("FC_FAULTS_SEED") or time.time_ns() % 1_000_000)


@pytest.fixture(scope="module")
def scenario() -> KillScenario:
    return KillScenario.default(accounts_count=60, customers_count=12)


@pytest.fixture(scope="module")
def reference(scenario: KillScenario, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return reference_run(scenario, tmp_path_factory.mktemp("kill9"))


@pytest.mark.parametrize("point", range(KILL_POINTS))
def test_kill_9_then_rerun_ends_as_a_clean_run(point: int, scenario: KillScenario, reference: Reference,
                                               tmp_path: Path) -> None:
    # Kill points spread over the time the run holds the warehouse (listing, refreshing, batch writes, the
    # Parquet export, the marts), stopping short of the end so every point kills a live run.
    holding = reference.duration - reference.lock_taken_after
    delays = spread_delays(KILL_POINTS, reference.lock_taken_after, reference.lock_taken_after + 0.85 * holding, SEED)
    trial = kill_trial(scenario, reference, tmp_path, f"point{point}", delays[point])
    if not trial.killed and trial.ran_for is not None:
        # This run was faster than the reference (measured while other tests started): the same point of this
        # run's own length, once, so the trial still kills a live run.
        assert trial.problems == [], f"seed {SEED}, the run that ended before its kill: {trial.problems}"
        trial = kill_trial(scenario, reference, tmp_path, f"point{point}-again",
                           round(delays[point] * trial.ran_for / reference.duration, 3))
    context = f"seed {SEED}, kill after {trial.delay}s (clean run: {reference.duration:.1f}s)"
    assert trial.killed, f"the run ended before the kill: {context}"
    assert trial.problems == [], context
