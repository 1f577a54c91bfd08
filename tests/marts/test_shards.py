"""Marts by several workers: 2 account hash shards under the multiprocess executor, with a real DagsterInstance,
build the same rows as the plain in-process build; the shards read Iceberg, one commit writes DuckDB and Iceberg."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.marts import MART_ASSETS
from assets.marts_launch import range_tags
from assets.marts_sharded import SHARDED_JOB_NAME
from pipelines.contract.check import check_warehouse
from pipelines.contract.tables import EXPORTED_TABLES, TABLES
from pipelines.marts.build import MART_TABLES, PARTITION_COLUMNS, ensure_mart_tables
from pipelines.marts.shard_build import STAGING_DIR_NAME, build_shard
from pipelines.marts.shard_commit import STALE_STAGING_SECONDS, plan_shards, remove_stale_staging
from pipelines.resources import WarehouseResource
from pipelines.warehouse.store import Warehouse
from tests.iceberg_tables import catalog_of, iceberg_differences
from tests.marts.conftest import BUILD_DAY, SETTINGS, create_warehouse
from tests.marts.test_assets import MART_CHECKS

# Columns taken from the build's clock (each run has its own): the rows are compared without them.
BUILD_TIME_COLUMNS = {"built_at", "staleness_hours", "max_staleness_hours"}


def code_location_sharded_job() -> dg.JobDefinition:
    """The sharded marts job of the code location, as each of the multiprocess executor's step processes rebuilds
    it (the warehouse, history start and shard count come from the environment the test sets)."""
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def(SHARDED_JOB_NAME)


def mart_rows(warehouse: Path, table: str) -> list[tuple]:
    columns = ", ".join(c.name for c in TABLES[table].columns if c.name not in BUILD_TIME_COLUMNS)
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()


def partition_counts(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        return con.execute("SELECT mart, partition_day, row_count FROM _fc_mart_partitions "
                           "WHERE partition_day IS NOT NULL ORDER BY ALL").fetchall()


def assert_same_marts(single: Path, sharded: Path) -> None:
    for table in PARTITION_COLUMNS:
        rows = mart_rows(single, table)
        assert rows, table
        assert mart_rows(sharded, table) == rows, table
    assert partition_counts(sharded) == partition_counts(single)  # each day's count is every shard's rows
    # Iceberg's current snapshots hold DuckDB's rows, the inputs the plan steps published included.
    assert iceberg_differences(sharded, (*PARTITION_COLUMNS, "fc_balances")) == []


def test_one_shard_is_the_plain_marts() -> None:
    from pipelines.definitions import build_definitions

    defs = build_definitions({"warehouse": WarehouseResource(mart_shards=1)})
    marts = [a for a in defs.assets if set(a.keys) <= {dg.AssetKey(t) for t in MART_TABLES}]  # type: ignore
    assert marts == MART_ASSETS  # the same plain assets: one step each, no plan or commit step
    assert SHARDED_JOB_NAME not in {job.name for job in defs.jobs}  # type: ignore[union-attr]


def test_two_shards_in_two_processes_build_what_the_single_build_builds(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir()
    create_warehouse(single / "fc_balances.duckdb").close()
    shutil.copytree(single, sharded)
    # The fixture's history and two weeks past its last balance (carried forward), not every day to today: each
    # day is a materialization event the step processes send the run, and fewer keep the test quick.
    last = BUILD_DAY + timedelta(days=15)
    tags = range_tags(SETTINGS.history_start, last)

    def single_run(run_tags: dict[str, str]) -> None:
        result = dg.materialize([*MART_ASSETS, *MART_CHECKS], resources={"warehouse": WarehouseResource(
            directory=str(single), history_start=SETTINGS.history_start.isoformat())}, tags=run_tags)
        assert result.success

    single_run(tags)

    # 2 shards, a process per step, a real instance under a DAGSTER_HOME of the test's own.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(sharded))
    monkeypatch.setenv("FC_BALANCES_HISTORY_START", SETTINGS.history_start.isoformat())
    monkeypatch.setenv("FC_BALANCES_MART_SHARDS", "2")
    with dg.DagsterInstance.get() as instance:
        # The partitioned marts only (the others are main's plain assets, one step each): fewer step processes.
        result = dg.execute_job(dg.reconstructable(code_location_sharded_job), instance=instance, tags=tags,
                                asset_selection=[dg.AssetKey(table) for table in PARTITION_COLUMNS])
        assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        pids = {e.step_key: e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
        run_id = result.run_id

    for table in PARTITION_COLUMNS:
        steps = sorted(key for key in pids if key.startswith(f"{table}.{table}_shard_"))
        assert steps == [f"{table}.{table}_shard_0", f"{table}.{table}_shard_1"]
        assert len({pids[key] for key in steps}) == 2  # each shard in a process of its own
        with duckdb.connect(str(sharded / "fc_balances.duckdb"), read_only=True) as con:
            # the fixture's keys fall in both shards, so each shard step built rows of its own
            shards = {n for (n,) in con.execute(f"SELECT DISTINCT hash(account_id) % 2 FROM {table}").fetchall()}
        assert shards == {0, 1}
        # One commit: one snapshot for the run.
        snapshots = catalog_of(sharded).load_table(("fc_balances", table)).snapshots()
        assert [s.summary.get("fc.run-id") for s in snapshots] == [run_id]
    assert_same_marts(single, sharded)
    assert not (sharded / STAGING_DIR_NAME).exists() or not any((sharded / STAGING_DIR_NAME).iterdir())
    # `fc-balances check` passes once the tables this run did not touch are published too (the fixture wrote them to
    # DuckDB only); the marts' own publish is left as the commit made it.
    with Warehouse(sharded) as wh:
        wh.publish([t for t in EXPORTED_TABLES if t not in PARTITION_COLUMNS], run_id="rest")
    assert check_warehouse(sharded) == []

    # A daily run after it: the last two days, each mart seeded from its previous partition (read from Iceberg);
    # the sharded graph in process this time.
    daily = range_tags(last - timedelta(days=1), last)
    single_run(daily)
    from pipelines.definitions import build_definitions

    sharded_job = build_definitions().resolve_job_def(SHARDED_JOB_NAME)
    assert sharded_job.execute_in_process(tags=daily, instance=dg.DagsterInstance.ephemeral(),
                                          asset_selection=[dg.AssetKey(table) for table in PARTITION_COLUMNS]).success
    assert_same_marts(single, sharded)


def test_a_crash_before_the_commit_leaves_the_marts_as_they_were(tmp_path: Path) -> None:
    create_warehouse(tmp_path / "fc_balances.duckdb").close()
    build_at = datetime.now(UTC)
    with Warehouse(tmp_path) as wh:
        with wh.connection() as con:
            ensure_mart_tables(con)
        task = plan_shards(wh, "fc_daily_balances", SETTINGS.history_start, build_at.date(), build_at, SETTINGS,
                           2, "crashed-run")
        path, rows = build_shard(task, 0, wh.catalog_properties, "256MB")
    assert rows > 0 and path.is_file()
    # The run dies here, before its commit: nothing reached the mart or its Iceberg table.
    assert mart_rows(tmp_path, "fc_daily_balances") == []
    assert catalog_of(tmp_path).load_table(("fc_balances", "fc_daily_balances")).current_snapshot() is None
    # A later run's plan removes the crashed run's files once they are stale, never a live run's.
    run_folder = path.parent.parent
    assert remove_stale_staging(tmp_path, "later-run") == []
    old = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(run_folder, (old, old))
    assert remove_stale_staging(tmp_path, "later-run") == [run_folder]
    assert not run_folder.exists()
