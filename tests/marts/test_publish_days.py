"""The partitioned marts published a chunk of consecutive days per query: each day partition holds exactly that day's
rows whatever the chunking, in one snapshot, and a build's publish replaces only the days it rebuilt."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.marts.build import build_marts, build_partition
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse, publish
from tests.iceberg_tables import catalog_of, duckdb_rows, iceberg_rows
from tests.marts.conftest import BUILD_AT, SETTINGS, create_warehouse

PARTITIONED = {"fc_daily_balances": "day", "fc_underwriting_features": "window_end"}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A warehouse folder whose marts are built (nothing published yet)."""
    folder = tmp_path / "built"
    folder.mkdir()
    con = create_warehouse(folder / DUCKDB_FILE_NAME)
    build_marts(con, BUILD_AT, SETTINGS, full=True)
    con.close()
    return folder


def files_by_day(folder: Path, table: str) -> dict[str, list[str]]:
    loaded = catalog_of(folder).load_table(("fc_balances", table))
    found: dict[str, list[str]] = {}
    for task in loaded.scan().plan_files():
        partition = task.file.file_path.split("/data/")[1].split("/")[0]
        found.setdefault(partition.split("=", 1)[1], []).append(task.file.file_path)
    return found


@pytest.mark.parametrize("chunk_rows", [1, 50, 10_000_000])
def test_each_day_partition_holds_its_rows_whatever_the_chunking(
    built: Path, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "PUBLISH_CHUNK_ROWS", chunk_rows)
    with Warehouse(built) as warehouse:
        written = warehouse.publish(list(PARTITIONED), run_id="full")
    for table, column in PARTITIONED.items():
        held = duckdb_rows(built, table)
        assert written[table] == len(held) > 0
        assert iceberg_rows(built, table) == held, table
        with duckdb.connect(str(built / DUCKDB_FILE_NAME), read_only=True) as con:
            days = [str(d) for (d,) in con.execute(f"SELECT DISTINCT {column} FROM {table} ORDER BY 1").fetchall()]
        files = files_by_day(built, table)
        assert sorted(files) == days and all(len(paths) == 1 for paths in files.values()), table
        assert len(catalog_of(built).load_table(("fc_balances", table)).snapshots()) == 1


def test_a_rebuild_of_some_days_replaces_only_those_days(built: Path) -> None:
    with Warehouse(built) as warehouse:
        warehouse.publish(["fc_daily_balances"], run_id="full")
    before = files_by_day(built, "fc_daily_balances")
    last = max(before)
    day = date.fromisoformat(last)
    with Warehouse(built) as warehouse:
        with warehouse.connection() as con:
            build_partition(con, "fc_daily_balances", day, BUILD_AT.replace(microsecond=1), SETTINGS)
        warehouse.publish(["fc_daily_balances"], days=(day, day), run_id="rebuild")
    after = files_by_day(built, "fc_daily_balances")
    assert {d: p for d, p in after.items() if d != last} == {d: p for d, p in before.items() if d != last}
    assert after[last] != before[last]  # the rebuilt day got its new file (built_at changed)
    latest = catalog_of(built).load_table(("fc_balances", "fc_daily_balances")).current_snapshot()
    assert latest.summary.get("fc.run-id") == "rebuild"
    assert latest.summary.get("fc.partition-range") == f"{last}..{last}"
    assert iceberg_rows(built, "fc_daily_balances") == duckdb_rows(built, "fc_daily_balances")


def test_scans_pruned_by_partition_value_and_column_bounds_read_exactly_the_matching_rows(built: Path) -> None:
    """The data files' partition values and column bounds (written by the publish, not by pyiceberg's own write)
    let a reader skip files: a day's scan plans that day's file alone, and every scan reads DuckDB's rows."""
    tables = {**PARTITIONED, "fc_balances": "as_of"}
    with Warehouse(built) as warehouse:
        warehouse.publish(list(tables), run_id="full")
    for table, column in tables.items():
        loaded = catalog_of(built).load_table(("fc_balances", table))
        with duckdb.connect(str(built / DUCKDB_FILE_NAME), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            day, account = con.execute(
                f"SELECT CAST({column} AS DATE), account_id FROM {table} ORDER BY ALL LIMIT 1 OFFSET 7").fetchone()
            in_day = con.execute(f"SELECT count(*) FROM {table} WHERE CAST({column} AS DATE) = $d", {"d": day})
            day_rows = in_day.fetchone()[0]
            of_account = con.execute(f"SELECT count(*) FROM {table} WHERE account_id = $a", {"a": account})
            account_rows = of_account.fetchone()[0]
        if column == "as_of":
            after = day + timedelta(days=1)
            day_filter = f"as_of >= '{day}T00:00:00+00:00' and as_of < '{after}T00:00:00+00:00'"
        else:
            day_filter = f"{column} = '{day}'"
        by_day = loaded.scan(row_filter=day_filter)
        assert len(list(by_day.plan_files())) == 1, table  # the other days' files are skipped by partition value
        assert by_day.to_arrow().num_rows == day_rows > 0, table
        by_account = loaded.scan(row_filter=f"account_id = '{account}'").to_arrow()
        assert by_account.num_rows == account_rows > 0, table
        assert set(by_account.column("account_id").to_pylist()) == {account}, table
