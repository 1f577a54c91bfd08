"""The marts as Dagster runs them: a real warehouse folder, DuckDB and Parquet, a range of daily partitions in one
run; blocking checks stop the marts."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.checks import ACCOUNTS_TO_RELINK, CHECKS, CURRENCIES_VALID
from assets.marts import MART_ASSETS, marts_job
from assets.marts_launch import out_of_date_range, range_tags
from pipelines.contract.tables import TABLES
from pipelines.marts.build import MART_TABLES
from pipelines.resources import WarehouseResource
from tests.iceberg_tables import catalog_of, iceberg_rows, iceberg_table
from tests.marts.conftest import SETTINGS, create_warehouse

MART_CHECKS = [c for c in CHECKS if {k.asset_key.to_user_string() for k in c.check_keys} <= set(MART_TABLES)]


def materialize_marts(warehouse_dir: Path) -> dg.ExecuteInProcessResult:
    """Every day from the history start to today, as one run (what `fc-balances marts --full` launches)."""
    today = datetime.now(UTC).date()
    return dg.materialize(
        [*MART_ASSETS, *MART_CHECKS],
        resources={"warehouse": WarehouseResource(
            directory=str(warehouse_dir), history_start=SETTINGS.history_start.isoformat())},
        tags=range_tags(SETTINGS.history_start, today),
        raise_on_error=False,
    )


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    create_warehouse(tmp_path / "fc_balances.duckdb").close()
    return tmp_path


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}


def test_marts_build_from_the_warehouse_and_publish_to_iceberg(warehouse_dir: Path) -> None:
    before = datetime.now(UTC)
    result = materialize_marts(warehouse_dir)
    after = datetime.now(UTC)
    assert result.success
    done = materializations(result)
    assert set(done) == set(MART_TABLES)
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.check_name != ACCOUNTS_TO_RELINK)
    # The hand-made warehouse has an inactive account: the relink check warns (never blocks) and counts it.
    (relink,) = [e for e in evaluations if e.check_name == ACCOUNTS_TO_RELINK]
    assert not relink.passed and relink.severity == dg.AssetCheckSeverity.WARN
    assert relink.metadata["inactive"].value == 1
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        for table in MART_TABLES:
            (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert rows > 0
            written = done[table].metadata.get("dagster/row_count") or done[table].metadata["rows_written"]
            assert written.value == rows
            assert len(iceberg_rows(warehouse_dir, table, "1")) == rows
            # One build time per mart, taken during the run and reported in the metadata.
            (built_at,) = con.execute(f"SELECT DISTINCT built_at FROM {table}").fetchall()
            assert before <= built_at[0] <= after
            assert built_at[0].timestamp() == pytest.approx(done[table].metadata["built_at"].value, abs=1e-3)
        # The funds-check macro ships with the marts.
        row = con.execute("SELECT basis FROM fc_sufficient_funds('fca_fallback', 1, 'usd')").fetchone()
        assert row == ("current_fallback",)


def test_declared_column_schemas_match_the_built_tables(warehouse_dir: Path) -> None:
    assert materialize_marts(warehouse_dir).success
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        for table in MART_TABLES:
            described = [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
            assert described == [(c.name, c.type) for c in TABLES[table].columns], table


def test_a_blocking_check_failure_stops_the_marts_downstream(warehouse_dir: Path) -> None:
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb")) as con:
        con.execute("UPDATE fc_balances SET currency = 'xyz' WHERE account_id = 'fca_old'")
    result = materialize_marts(warehouse_dir)
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert failed == {("fc_latest_balances", CURRENCIES_VALID), ("fc_daily_balances", CURRENCIES_VALID)}
    # fc_account_health reads no other mart, so nothing blocks it.
    assert set(materializations(result)) == {"fc_latest_balances", "fc_daily_balances", "fc_account_health"}


def test_asset_graph_and_job() -> None:
    deps = {a.key.to_user_string(): {k.to_user_string() for k in a.asset_deps[a.key]} for a in MART_ASSETS}
    assert deps == {
        "fc_latest_balances": {"fc_balances", "fc_accounts"},
        "fc_daily_balances": {"fc_balances", "fc_daily_balances"},  # itself: the previous day
        "fc_underwriting_features": {"fc_balances", "fc_daily_balances", "fc_underwriting_features"},
        "fc_customer_liquidity": {"fc_latest_balances"},
        "fc_account_health": {"fc_accounts", "fc_balance_refreshes", "fc_balances"},
    }
    partitioned = {a.key.to_user_string(): a for a in MART_ASSETS if a.partitions_def is not None}
    assert set(partitioned) == {"fc_daily_balances", "fc_underwriting_features"}
    for asset in partitioned.values():
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    for asset in MART_ASSETS:
        spec = next(iter(asset.specs))
        assert spec.group_name == "marts" and set(spec.kinds) == {"duckdb", "iceberg"}
    defs = dg.Definitions(assets=MART_ASSETS, asset_checks=CHECKS, jobs=[marts_job],
                          resources={"warehouse": WarehouseResource(directory="unused")})
    assert defs.resolve_job_def("fc_marts_job")  # the selection resolves


def test_iceberg_holds_one_partition_per_day_and_a_snapshot_per_run(warehouse_dir: Path) -> None:
    result = materialize_marts(warehouse_dir)
    assert result.success
    daily = catalog_of(warehouse_dir).load_table(("fc_balances", "fc_daily_balances"))
    partitions = sorted({task.file.file_path.split("/data/")[1].split("/")[0] for task in daily.scan().plan_files()})
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        days = [d for (d,) in con.execute("SELECT DISTINCT day FROM fc_daily_balances ORDER BY day").fetchall()]
        assert partitions == [f"day={d.isoformat()}" for d in days]  # identity(day), one file per day
        in_duckdb = con.execute("SELECT window_end, count(*) FROM fc_underwriting_features GROUP BY ALL "
                                "ORDER BY ALL").fetchall()
    features = iceberg_table(warehouse_dir, "fc_underwriting_features")  # noqa: F841 - read by DuckDB below
    assert duckdb.sql("SELECT window_end, count(*) FROM features GROUP BY ALL ORDER BY ALL").fetchall() == in_duckdb
    # the run's one snapshot, with its run id and the range of days it replaced
    (snapshot,) = daily.snapshots()
    assert snapshot.summary.get("fc.run-id") == result.run_id
    assert snapshot.summary.get("fc.partition-range") == f"{days[0].isoformat()}..{days[-1].isoformat()}"


CLI = str(Path(sys.executable).with_name("fc-balances"))


def cli(warehouse_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FC_BALANCES_", "DAGSTER_HOME", "STRIPE_"))}
    env |= {"FC_BALANCES_WAREHOUSE": str(warehouse_dir),
            "FC_BALANCES_HISTORY_START": SETTINGS.history_start.isoformat()}
    return subprocess.run([CLI, "marts", *args], env=env, capture_output=True, text=True, timeout=600)


def built_days(warehouse_dir: Path) -> dict:
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        return dict(con.execute("SELECT partition_day, built_at FROM _fc_mart_partitions "
                                "WHERE mart = 'fc_daily_balances' AND partition_day IS NOT NULL").fetchall())


def test_cli_rebuilds_out_of_date_days_a_range_or_everything(warehouse_dir: Path) -> None:
    first = cli(warehouse_dir)
    assert first.returncode == 0, first.stderr[-2000:]
    today = datetime.now(UTC).date()
    # From the first balance (2024-12-01): the days before it hold nothing and are never out of date.
    assert f"rebuilding 2024-12-01..{today}" in first.stdout
    before = built_days(warehouse_dir)
    assert min(before) == date(2024, 12, 1) and max(before) == today
    # Nothing new: only today is rebuilt (it is not over yet), with the unpartitioned marts.
    again = cli(warehouse_dir)
    assert again.returncode == 0 and f"rebuilding {today}..{today} (1 days)" in again.stdout
    ranged = cli(warehouse_dir, "--from", "2025-03-20", "--to", "2025-03-22")
    assert ranged.returncode == 0, ranged.stderr[-2000:]
    after = built_days(warehouse_dir)
    changed = {d for d in after if after[d] != before[d]}
    assert {date(2025, 3, 20), date(2025, 3, 21), date(2025, 3, 22)} <= changed
    assert all(d == today or date(2025, 3, 20) <= d <= date(2025, 3, 22) for d in changed)
    bad = cli(warehouse_dir, "--to", "2025-03-22")
    assert bad.returncode == 1 and bad.stderr.strip() == "fc-balances: error: --to needs --from"


def test_finding_the_out_of_date_days_publishes_nothing(warehouse_dir: Path) -> None:
    # The sensor asks after every ingest: a read, never a publish.
    assert materialize_marts(warehouse_dir).success
    resource = WarehouseResource(directory=str(warehouse_dir), history_start=SETTINGS.history_start.isoformat())
    today = datetime.now(UTC).date()
    assert out_of_date_range(resource, today) is None
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb")) as con:  # a late balance, landed by plain SQL
        con.execute("INSERT INTO fc_balances VALUES ('fca_gap', 'cus_1', 'cash', 'usd', "
                    "TIMESTAMPTZ '2025-03-26 10:00:00+00', 5, 5, NULL, 0.05, 0.05, NULL, now())")
    snapshots = len(catalog_of(warehouse_dir).load_table(("fc_balances", "fc_daily_balances")).snapshots())
    assert out_of_date_range(resource, today) == (date(2025, 3, 26), today)
    assert len(catalog_of(warehouse_dir).load_table(("fc_balances", "fc_daily_balances")).snapshots()) == snapshots
