"""Two `fc-balances run` at once on one warehouse: the second waits for the writer lock, or says it is busy."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.faults.harness import (
    cli_env,
    integrity_problems,
    kill_fixtures,
    query,
    refreshable_account_ids,
    run_ids,
    start_cli,
    wait_for_lock_holder,
)


def finish(process: subprocess.Popen[bytes], logs: Path, name: str, timeout: float = 120) -> tuple[int, str, str]:
    code = process.wait(timeout=timeout)
    return code, (logs / f"{name}.out").read_text(), (logs / f"{name}.err").read_text()


def test_second_run_waits_for_the_first_and_both_succeed(sandbox_factory, tmp_path: Path) -> None:
    fixtures = kill_fixtures(30, 8, int(time.time()) - 3_600)
    refreshable = refreshable_account_ids(fixtures, time.time())
    sandbox = sandbox_factory(fixtures=fixtures, refresh_latency=(1.0, 1.0), refresh_cooldown=3_600.0)
    warehouse, logs = tmp_path / "wh", tmp_path / "logs"
    env = cli_env(sandbox.api_key, sandbox.base_url, warehouse)  # the default lock timeout (60 s)

    first = start_cli(env, logs, "first")
    assert wait_for_lock_holder(warehouse, first.pid, timeout=60), "the first run never took the warehouse"
    second = start_cli(env, logs, "second")
    first_code, _, first_err = finish(first, logs, "first")
    second_code, _, second_err = finish(second, logs, "second")
    assert (first_code, second_code) == (0, 0), first_err + second_err

    runs = run_ids(warehouse)
    assert len(runs) == 2
    by_run = {run: dict(query(warehouse, "select account_id, outcome from fc_balance_refreshes where run_id = ?",
                              [run])) for run in runs}
    first_run = next(run for run, rows in by_run.items() if rows.get(sorted(refreshable)[0]) != "skipped_cooldown")
    (second_run,) = runs - {first_run}
    # The second run listed the accounts only after the first one's refreshes had completed: every account the
    # first refreshed is in cooldown for it. Had they overlapped it would have seen them refreshable or pending.
    assert {a for a, outcome in by_run[second_run].items() if outcome == "skipped_cooldown"} >= refreshable
    assert {a for a, o in by_run[first_run].items() if o in ("succeeded", "failed")} == refreshable
    assert integrity_problems(warehouse) == []


def test_lock_timeout_gives_one_line_and_corrupts_nothing(sandbox_factory, tmp_path: Path) -> None:
    fixtures = kill_fixtures(20, 5, int(time.time()) - 3_600)
    # Refreshes that take 6 s keep the first run holding the warehouse far longer than the second will wait.
    sandbox = sandbox_factory(fixtures=fixtures, refresh_latency=(6.0, 6.0), refresh_cooldown=3_600.0)
    warehouse, logs = tmp_path / "wh", tmp_path / "logs"
    env = cli_env(sandbox.api_key, sandbox.base_url, warehouse)

    first = start_cli(env, logs, "first")
    assert wait_for_lock_holder(warehouse, first.pid, timeout=60), "the first run never took the warehouse"
    second = start_cli({**env, "FC_BALANCES_LOCK_TIMEOUT": "1"}, logs, "second")
    second_code, second_out, second_err = finish(second, logs, "second")
    still_running = first.poll() is None
    first_code, _, first_err = finish(first, logs, "first")

    assert still_running, "the first run ended before the second gave up: the test proved nothing"
    assert second_code != 0
    lines = [line for line in second_err.splitlines() if line.strip()]
    assert len(lines) == 1, second_err
    assert "Traceback" not in second_err + second_out
    assert "locked by another run" in lines[0] and str(warehouse) in lines[0] and str(first.pid) in lines[0]
    assert first_code == 0, first_err
    # Nothing of the second run reached the warehouse, and the first run's warehouse is whole.
    assert len(run_ids(warehouse)) == 1
    assert {row[0] for row in query(warehouse, "select account_id from fc_balance_refreshes")} == {
        doc["id"] for doc in fixtures["accounts"]}
    assert integrity_problems(warehouse) == []
