"""The day files of the partitioned marts, written a run of consecutive days per query: each file holds exactly its
day's rows in key order, and its bytes do not depend on how the days were grouped."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.marts.build import build_marts
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse
from pipelines.warehouse import export as export_module
from tests.marts.conftest import BUILD_AT, SETTINGS, create_warehouse

PARTITIONED = {"fc_daily_balances": ("day", "account_id, currency"),
               "fc_underwriting_features": ("window_end", "account_id, currency, window_days")}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A warehouse folder whose marts are built (no Parquet yet)."""
    folder = tmp_path / "built"
    folder.mkdir()
    con = create_warehouse(folder / DUCKDB_FILE_NAME)
    build_marts(con, BUILD_AT, SETTINGS, full=True)
    con.close()
    return folder


def exported_files(folder: Path, chunk_rows: int, threads: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.setattr(export_module, "DAY_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(export_module, "EXPORT_THREADS", threads)
    with Warehouse(folder) as warehouse:
        written = warehouse.export_parquet(list(PARTITIONED))
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
        for table in PARTITIONED:
            assert written[table] == con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    root = folder / "parquet"
    return {str(p.relative_to(root)): p.read_bytes() for table in PARTITIONED
            for p in sorted((root / table).rglob("*.parquet"))}


def test_day_files_hold_their_days_rows_in_key_order(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exported_files(built, chunk_rows=25, threads=2, monkeypatch=monkeypatch)  # runs of a few days, two at once
    with duckdb.connect(str(built / DUCKDB_FILE_NAME), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for table, (column, key) in PARTITIONED.items():
            days = [d for (d,) in con.execute(f"SELECT DISTINCT {column} FROM {table} ORDER BY 1").fetchall()]
            assert len(days) > 50  # far more days than fit one run of 25 rows
            files = sorted((built / "parquet" / table).iterdir())
            assert [f.name for f in files] == [f"{column}={d.isoformat()}" for d in days]
            for day, folder in zip(days, files, strict=True):
                expected = con.sql(f"SELECT * EXCLUDE ({column}) FROM {table} WHERE {column} = ? ORDER BY {key}",
                                   params=[day]).to_arrow_table()
                assert pq.read_table(folder / "data.parquet").to_pylist() == expected.to_pylist(), (table, day)


def test_file_bytes_do_not_depend_on_how_days_are_grouped(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = [tmp_path / name for name in ("one_day_per_query", "runs", "all_in_one")]
    for copy in copies:
        shutil.copytree(built, copy)
    one_day = exported_files(copies[0], chunk_rows=1, threads=1, monkeypatch=monkeypatch)
    runs = exported_files(copies[1], chunk_rows=40, threads=2, monkeypatch=monkeypatch)
    whole = exported_files(copies[2], chunk_rows=10**9, threads=2, monkeypatch=monkeypatch)
    assert one_day and one_day == runs == whole


def test_only_changed_days_are_rewritten_across_gaps(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exported_files(built, chunk_rows=10**9, threads=2, monkeypatch=monkeypatch)
    root = built / "parquet" / "fc_daily_balances"
    changed = [date(2025, 3, 20), date(2025, 3, 21), date(2025, 3, 25)]  # a run of two, a gap, one more
    inodes = {p.parent.name: p.stat().st_ino for p in root.rglob("data.parquet")}
    with duckdb.connect(str(built / DUCKDB_FILE_NAME)) as con:
        con.execute("UPDATE fc_daily_balances SET current = current + 1 WHERE day IN (SELECT unnest(?))", [changed])
        con.execute("DELETE FROM fc_daily_balances WHERE day = ?", [date(2025, 3, 22)])
    monkeypatch.setattr(export_module, "DAY_CHUNK_ROWS", 10**9)
    with Warehouse(built) as warehouse:
        rewritten = warehouse.export_parquet(["fc_daily_balances"])["fc_daily_balances"]
        with warehouse.connection() as con:
            expected = con.execute("SELECT count(*) FROM fc_daily_balances WHERE day IN (SELECT unnest(?))",
                                   [changed]).fetchall()[0][0]
    assert rewritten == expected > 0
    after = {p.parent.name: p.stat().st_ino for p in root.rglob("data.parquet")}
    assert set(after) == set(inodes) - {"day=2025-03-22"}  # the emptied day's file is gone
    new = {name for name in after if after[name] != inodes[name]}
    assert new == {f"day={d.isoformat()}" for d in changed}


def test_day_runs_are_consecutive_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "DAY_CHUNK_ROWS", 6)
    first = date(2025, 1, 1)
    rows = {0: 3, 1: 3, 2: 3, 4: 3, 5: 10, 6: 1}
    keys = {f"day={(first + timedelta(days=d)).isoformat()}/data.parquet": n for d, n in rows.items()}
    runs = export_module._day_runs("fc_daily_balances", keys)
    assert [[(day - first).days for day in run] for run in runs] == [[0, 1], [2], [4], [5], [6]]
    with pytest.raises(export_module.WarehouseError, match="not a day file"):
        export_module._day_runs("fc_daily_balances", {"fc_daily_balances.parquet": 1})
