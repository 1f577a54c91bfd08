"""Restricted keys: the four permissions the pipeline needs suffice; without one, the run stops with one clear line."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.harness import (
    FULL_PERMISSIONS,
    cli_env,
    error_lines,
    integrity_problems,
    kill_fixtures,
    query,
    refreshable_account_ids,
    run_cli,
)

RESTRICTED_KEY = "rk_test_faultsuiteRestricted0123456789"
# More refreshable accounts than the engine has refresh workers (64), so a fault that kills a worker per
# account cannot go unnoticed by running out of accounts first.
ACCOUNTS = 70
# A run that fails on its first refresh ends within seconds; far longer than that means it hangs.
FAILING_RUN_TIMEOUT = 45.0


@pytest.fixture
def fixtures() -> dict:
    return kill_fixtures(ACCOUNTS, 10, int(time.time()) - 3_600)


def test_restricted_key_with_the_four_permissions_runs(sandbox_factory, fixtures: dict, tmp_path: Path) -> None:
    sandbox = sandbox_factory(fixtures=fixtures, refresh_latency=(0.2, 0.2),
                              restricted_keys={RESTRICTED_KEY: FULL_PERMISSIONS})
    warehouse = tmp_path / "wh"
    done = run_cli(cli_env(RESTRICTED_KEY, sandbox.base_url, warehouse))
    assert done.returncode == 0, done.stderr
    refreshed = {row[0] for row in query(warehouse, "select account_id from fc_balance_refreshes "
                                                    "where outcome in ('succeeded', 'failed')")}
    assert refreshed == refreshable_account_ids(fixtures, time.time())
    assert query(warehouse, "select count(*) from fc_balance_refreshes where outcome = 'error'") == [(0,)]
    assert RESTRICTED_KEY not in done.stdout + done.stderr
    assert integrity_problems(warehouse) == []


@pytest.mark.parametrize("missing", sorted(FULL_PERMISSIONS))
def test_restricted_key_without_a_needed_permission_fails_with_one_line_naming_it(
    sandbox_factory, fixtures: dict, tmp_path: Path, missing: str
) -> None:
    # What a user needs: a key that cannot list, refresh or read events makes every run useless, so the run
    # fails at once saying which permission to add, rather than "succeeding" with nothing refreshed.
    sandbox = sandbox_factory(fixtures=fixtures, refresh_latency=(0.2, 0.2),
                              restricted_keys={RESTRICTED_KEY: FULL_PERMISSIONS - {missing}})
    try:
        done = run_cli(cli_env(RESTRICTED_KEY, sandbox.base_url, tmp_path / "wh"), timeout=FAILING_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"without {missing} the run hung (no exit in {FAILING_RUN_TIMEOUT:g}s)")
    assert done.returncode != 0, f"without {missing} the run succeeded: {done.stdout[-1500:]}"
    lines = error_lines(done)
    assert len(lines) == 1, done.stderr
    assert missing in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert RESTRICTED_KEY.removeprefix("rk_test_") not in done.stdout + done.stderr
