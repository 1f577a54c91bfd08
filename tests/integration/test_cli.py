"""`fc-balances run` as a user runs it: one clear line and a non-zero exit on bad input, a summary on success."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.iceberg_tables import iceberg_differences
from tests.integration.helpers import query

FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))


def run_cli(args: list[str], env_overrides: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    env.update(env_overrides)
    return subprocess.run([FC_BALANCES, *args], env=env, capture_output=True, text=True, timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_key_is_one_line_and_writes_nothing(sandbox, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    done = run_cli(["run"], {"STRIPE_API_KEY": "sk_test_wrong_key_123", "STRIPE_API_BASE": sandbox.base_url,
                             "FC_BALANCES_WAREHOUSE": str(warehouse)})
    line = one_error_line(done)
    assert "API key" in line
    assert "sk_test_wrong_key_123" not in done.stderr + done.stdout
    assert not (warehouse / "fc_balances.duckdb").exists()


def test_unreachable_api_is_one_line(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    done = run_cli(["run"], {"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": base,
                             "FC_BALANCES_WAREHOUSE": str(tmp_path / "wh")})
    line = one_error_line(done)
    assert "cannot reach" in line and base in line
    assert not (tmp_path / "wh" / "fc_balances.duckdb").exists()


def test_unwritable_warehouse_is_one_line(sandbox, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    done = run_cli(["run"], {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url,
                             "FC_BALANCES_WAREHOUSE": str(blocker / "wh")})
    line = one_error_line(done)
    assert "warehouse" in line and str(blocker / "wh") in line
    assert sandbox.stats()["requests"] == {}  # it failed before calling the API


def test_bad_setting_is_one_line(sandbox, tmp_path: Path) -> None:
    done = run_cli(["run"], {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url,
                             "FC_BALANCES_WAREHOUSE": str(tmp_path / "wh"), "FC_BALANCES_MAX_RPS": "fast"})
    assert "FC_BALANCES_MAX_RPS" in one_error_line(done)


def test_run_against_a_given_api_prints_a_summary(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(demo_customers=8, refresh_latency=(0.1, 0.1))
    warehouse = tmp_path / "wh"
    done = run_cli(["run"], {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url,
                             "FC_BALANCES_WAREHOUSE": str(warehouse), "FC_BALANCES_POLL_INTERVAL": "0.1"})
    assert done.returncode == 0, done.stderr
    assert "done in" in done.stdout and "fc_balances:" in done.stdout and "Iceberg:" in done.stdout
    listed = query(warehouse, "select count(*) from fc_accounts")[0][0]
    assert listed > 0
    assert query(warehouse, "select count(*) from fc_balance_refreshes")[0][0] == listed
    assert sandbox.api_key not in done.stdout + done.stderr
    # The run ends with every table published: Iceberg holds what DuckDB holds.
    assert iceberg_differences(warehouse) == []


def test_run_without_a_key_uses_the_built_in_sandbox(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    done = run_cli(["run", "--demo-customers", "6", "--sandbox-latency", "0.1"],
                   {"FC_BALANCES_WAREHOUSE": str(warehouse), "FC_BALANCES_POLL_INTERVAL": "0.1"})
    assert done.returncode == 0, done.stderr
    assert "built-in sandbox" in done.stdout
    assert query(warehouse, "select count(*) from fc_balances")[0][0] > 0
    assert iceberg_differences(warehouse) == []


@pytest.mark.parametrize(("variable", "bad"), [
    ("FC_BALANCES_BATCH_SIZE", "lots"),  # read by the ingest only after its first request, before #22
    ("FC_BALANCES_EVENT_RETENTION_DAYS", "-1"),
    ("FC_BALANCES_HISTORY_START", "yesterday"),  # read by the marts, after the whole ingest
    ("FC_BALANCES_STALENESS_HOURS", "lots"),  # read by the checks, after the ingest
])
def test_a_bad_setting_is_named_before_any_request(variable: str, bad: str, tmp_path: Path) -> None:
    """With an unreachable API, a request would fail with "cannot reach": the line names the variable instead."""
    base = f"http://127.0.0.1:{free_port()}"
    warehouse = tmp_path / "wh"
    done = run_cli(["run"], {"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": base,
                             "FC_BALANCES_WAREHOUSE": str(warehouse), variable: bad})
    assert done.returncode == 1
    line = one_error_line(done)
    assert variable in line and repr(bad) in line and "cannot reach" not in line
    assert not warehouse.exists()  # nothing written, not even the folder


def test_a_bad_setting_without_a_key_is_named_before_the_sandbox_starts(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    done = run_cli(["run", "--demo-customers", "2"], {"FC_BALANCES_WAREHOUSE": str(warehouse),
                                                      "FC_BALANCES_BATCH_SIZE": "lots"})
    assert done.returncode == 1
    assert "FC_BALANCES_BATCH_SIZE" in one_error_line(done) and "built-in sandbox" not in done.stdout
    assert not warehouse.exists()
