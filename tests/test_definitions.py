"""The code location loads as documented, and the headless commands the README shows work."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipelines.definitions import INGEST_JOB_NAME, JOB_NAME, defs
from tests.integration.helpers import query
from tests.integration.test_streaming import fixtures

DAGSTER = str(Path(sys.executable).with_name("dagster"))
ROOT = Path(__file__).resolve().parents[1]


def test_assets_groups_kinds_and_schemas() -> None:
    graph = defs.resolve_asset_graph()
    expected_groups = {
        "fc_accounts": "stripe_fc", "fc_balances": "stripe_fc", "fc_balance_refreshes": "stripe_fc",
        "fc_rejected_balances": "stripe_fc", "fc_latest_balances": "marts", "fc_daily_balances": "marts",
        "fc_underwriting_features": "marts", "fc_customer_liquidity": "marts", "fc_events": "events",
    }
    for key, group in expected_groups.items():
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == group, key
        assert node.description, key
        assert "duckdb" in node.kinds, key
        assert node.metadata.get("dagster/column_schema") is not None, key


def test_jobs_schedule_and_sensor() -> None:
    assert defs.resolve_job_def(JOB_NAME) is not None
    assert defs.resolve_job_def(INGEST_JOB_NAME) is not None
    schedule = defs.resolve_schedule_def("fc_balances_daily")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 6 * * *"
    sensor = defs.resolve_sensor_def("stripe_events_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    # The daily job is the ingest and its checks; the marts follow as their own run over the out-of-date days.
    daily = {k.to_user_string() for k in defs.resolve_job_def(JOB_NAME).asset_layer.selected_asset_keys}
    assert not daily & {"fc_latest_balances", "fc_daily_balances", "fc_underwriting_features"}
    marts = defs.resolve_sensor_def("marts_after_ingest")
    assert marts.default_status == dg.DefaultSensorStatus.RUNNING


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    env.update(overrides)
    return env


def test_headless_materialize_all_then_marts_alone(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(6))
    warehouse = tmp_path / "wh"
    today = datetime.now(UTC).date().isoformat()
    # The daily-partitioned marts need a day: today's, as the README shows.
    everything = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", "*", "--partition", today],
        env=_env(STRIPE_API_KEY=sandbox.api_key, STRIPE_API_BASE=sandbox.base_url,
                 FC_BALANCES_WAREHOUSE=str(warehouse), FC_BALANCES_POLL_INTERVAL="0.1"),
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert everything.returncode == 0, everything.stderr[-3000:]
    assert query(warehouse, "select count(*) from fc_balances")[0][0] == 6
    assert query(warehouse, "select count(*) from fc_latest_balances")[0][0] == 6
    requests_before = sum(sandbox.stats()["requests"].values())
    # The marts rebuild from the warehouse alone: no key in the environment, no call to Stripe.
    marts = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "pipelines.definitions", "--select", "group:marts",
         "--partition", today],
        env=_env(FC_BALANCES_WAREHOUSE=str(warehouse)), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert marts.returncode == 0, marts.stderr[-3000:]
    assert sum(sandbox.stats()["requests"].values()) == requests_before
    # Today's partition was built (it may hold no row: a balance is carried at most 31 days).
    built = "select count(*) from _fc_mart_partitions where mart = 'fc_daily_balances' and partition_day is not null"
    assert query(warehouse, built)[0][0] >= 1
