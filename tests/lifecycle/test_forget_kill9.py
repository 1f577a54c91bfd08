"""kill -9 during `fc-balances forget`: at each step and at random moments; the next forget or run finishes it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stripe_sandbox import SandboxConfig, start_sandbox
from tests.conftest import TEST_SANDBOX_DEFAULTS
from tests.integration.helpers import run_ingest
from tests.lifecycle.helpers import (
    FC_BALANCES,
    REPO,
    accounts_of,
    build_warehouse,
    cli,
    copy_warehouse,
    counts,
    files_naming,
    iceberg_about,
    query,
    store_events_about,
)

# The child forgets one customer and SIGKILLs itself when the deletion reaches the named step.
CHILD = """
import os, signal, sys
from pipelines.lifecycle import forget
def hook(name):
    if name == sys.argv[1]:
        os.kill(os.getpid(), signal.SIGKILL)
forget.STEP_HOOK = hook
from pipelines.cli.main import main
sys.exit(main(["forget", "--customer", sys.argv[2]]))
"""
STEPS = ("recorded", "event_store", "duckdb", "iceberg", "erased")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with start_sandbox(SandboxConfig(**{**TEST_SANDBOX_DEFAULTS, "rate_limit": False})) as running:
        running.load_demo(6)
        yield running


@pytest.fixture(scope="module")
def template(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    warehouse = tmp_path_factory.mktemp("template") / "wh"
    build_warehouse(sandbox, warehouse)
    return warehouse


def _copy(template: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    return copy_warehouse(template, copy)


def _customer(warehouse: Path) -> str:
    return query(warehouse, "SELECT customer_id FROM fc_balances GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0]


def _env(warehouse: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    return {**env, "FC_BALANCES_WAREHOUSE": str(warehouse)}


def _assert_forgotten(warehouse: Path, customer: str, accounts: list[str], others: dict[str, int] | None) -> None:
    after = counts(warehouse, customer, accounts)
    assert {t: about for t, (about, _) in after.items() if about} == {}
    if others is not None:
        assert {t: o for t, (_, o) in after.items()} == others
    assert store_events_about(warehouse, customer, accounts) == 0
    assert all(hits == 0 for hits in iceberg_about(warehouse, customer, accounts).values())
    assert query(warehouse, "SELECT status FROM fc_deletions") == [("done",)]
    assert files_naming(warehouse, [customer, *accounts]) == []
    checked = cli(["check"], warehouse)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_forget_again_finishes(template: Path, tmp_path: Path, step: str) -> None:
    warehouse = _copy(template, tmp_path, "wh")
    customer = _customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    others = {t: o for t, (_, o) in counts(warehouse, customer, accounts).items()}
    killed = subprocess.run([sys.executable, "-c", CHILD, step, customer], env=_env(warehouse), cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert query(warehouse, "SELECT status FROM fc_deletions") != [("done",)]  # it never said done

    again = cli(["forget", "--customer", customer], warehouse)
    assert again.returncode == 0, again.stderr
    assert "finished 1 deletion request" in again.stdout
    _assert_forgotten(warehouse, customer, accounts, others)


@pytest.mark.parametrize("step", ["event_store", "duckdb"])
def test_kill_9_then_the_next_run_finishes_it(sandbox: Any, template: Path, tmp_path: Path, step: str) -> None:
    warehouse = _copy(template, tmp_path, "wh")
    customer = _customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    killed = subprocess.run([sys.executable, "-c", CHILD, step, customer], env=_env(warehouse), cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL
    assert run_ingest(sandbox, warehouse).success  # the run finishes the deletion first, then skips the subject
    _assert_forgotten(warehouse, customer, accounts, None)


def test_kill_9_at_random_moments(template: Path, tmp_path: Path) -> None:
    reference = _copy(template, tmp_path, "reference")
    customer = _customer(reference)
    accounts = accounts_of(reference, customer)
    started = time.monotonic()
    assert cli(["forget", "--customer", customer], reference).returncode == 0
    duration = time.monotonic() - started
    others = {t: o for t, (_, o) in counts(reference, customer, accounts).items()}

    rng = random.Random(12)
    outcomes = []
    for trial in range(4):
        warehouse = _copy(template, tmp_path, f"wh{trial}")
        proc = subprocess.Popen([FC_BALANCES, "forget", "--customer", customer], env=_env(warehouse), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, max(0.3, duration)))
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait(timeout=60))
        again = cli(["forget", "--customer", customer], warehouse)
        assert again.returncode == 0, again.stderr
        _assert_forgotten(warehouse, customer, accounts, others)
    print(f"forget took {duration:.2f}s; trial exit codes {outcomes}")
