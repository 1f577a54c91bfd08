"""Marts by several workers: 2 account hash shards under the multiprocess executor, with a real DagsterInstance,
build the same rows as 1 shard in process."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.marts import MART_ASSETS, sharded_marts_job
from assets.marts_launch import range_tags
from pipelines.contract.tables import TABLES
from pipelines.marts.build import MART_TABLES, PARTITION_COLUMNS, Shard
from pipelines.resources import WarehouseResource
from tests.iceberg_tables import catalog_of, iceberg_differences
from tests.marts.conftest import SETTINGS, create_warehouse
from tests.marts.test_assets import MART_CHECKS

# Columns taken from the build's clock (each run has its own): the rows are compared without them.
BUILD_TIME_COLUMNS = {"built_at", "staleness_hours", "max_staleness_hours"}


def code_location_sharded_job() -> dg.JobDefinition:
    """The marts job of the code location, as each of the multiprocess executor's step processes rebuilds it (the
    warehouse, history start and shard count come from the environment the test sets)."""
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def(sharded_marts_job.name)


def mart_rows(warehouse: Path, table: str) -> list[tuple]:
    columns = ", ".join(c.name for c in TABLES[table].columns if c.name not in BUILD_TIME_COLUMNS)
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()


def partition_counts(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        return con.execute("SELECT mart, partition_day, row_count FROM _fc_mart_partitions "
                           "WHERE partition_day IS NOT NULL ORDER BY ALL").fetchall()


def test_two_shards_in_two_processes_build_what_one_shard_builds(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir()
    create_warehouse(single / "fc_balances.duckdb").close()
    shutil.copytree(single, sharded)
    today = datetime.now(UTC).date()
    tags = range_tags(SETTINGS.history_start, today)

    # 1 shard (the default), in process.
    one = dg.materialize([*MART_ASSETS, *MART_CHECKS], resources={"warehouse": WarehouseResource(
        directory=str(single), history_start=SETTINGS.history_start.isoformat())}, tags=tags)
    assert one.success

    # 2 shards, a process per step, a real instance under a DAGSTER_HOME of the test's own.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(sharded))
    monkeypatch.setenv("FC_BALANCES_HISTORY_START", SETTINGS.history_start.isoformat())
    monkeypatch.setenv("FC_BALANCES_MART_SHARDS", "2")
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(code_location_sharded_job), instance=instance, tags=tags)
        assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
        pids = {e.step_key: e.pid for e in starts}
        run_id = result.run_id

    for table in PARTITION_COLUMNS:
        steps = [key for key in pids if key.startswith(f"{table}.{table}_shard[")]
        assert sorted(steps) == [f"{table}.{table}_shard[shard_0]", f"{table}.{table}_shard[shard_1]"]
        assert len({pids[key] for key in steps}) == 2  # each shard in a process of its own
        with duckdb.connect(str(sharded / "fc_balances.duckdb"), read_only=True) as con:
            # the fixture's keys fall in both shards, so each shard step built rows of its own
            shards = {n for (n,) in con.execute(f"SELECT DISTINCT hash(account_id) % 2 FROM {table}").fetchall()}
        assert shards == {0, 1}

    for table in MART_TABLES:
        rows = mart_rows(single, table)
        assert rows, table
        assert mart_rows(sharded, table) == rows, table
    assert partition_counts(sharded) == partition_counts(single)  # each day's count is every shard's rows

    # Iceberg: one publish after the shards, one snapshot for the run, holding what DuckDB holds.
    assert iceberg_differences(sharded, tuple(MART_TABLES)) == []
    for table in PARTITION_COLUMNS:
        snapshots = catalog_of(sharded).load_table(("fc_balances", table)).snapshots()
        assert [s.summary.get("fc.run-id") for s in snapshots] == [run_id]


def test_a_shard_outside_the_count_is_refused() -> None:
    with pytest.raises(ValueError, match="shard 2 of 2 does not exist"):
        Shard(2, 2)
    total, mine = Shard(1, 3).buckets(2)
    assert (total, mine) == (6, [1, 4])  # bucket b of 6 is in shard b % 3
