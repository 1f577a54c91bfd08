"""Read-only access: no writer lock, no export marker, no repair on the next open; it waits for a writing step."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from pipelines.marts.build import build_marts
from pipelines.warehouse import (
    DIRTY_MARKER_NAME,
    LOCK_FILE_NAME,
    Warehouse,
    WarehouseBusyError,
    WarehouseError,
    open_reader,
)
from tests.unit.test_warehouse import make_batch, sample_accounts


@pytest.fixture
def written(tmp_path: Path) -> Path:
    folder = tmp_path / "wh"
    with Warehouse(folder) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.export_parquet()
    return folder


def test_a_reader_leaves_no_marker_and_the_next_open_repairs_nothing(
    written: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_reader(written) as con:
        assert con.execute("select count(*) from fc_balances").fetchone()[0] > 0
        assert con.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
        with pytest.raises(duckdb.Error):  # read-only for real
            con.execute("delete from fc_balances")
    assert not (written / DIRTY_MARKER_NAME).exists()
    repairs: list[int] = []
    monkeypatch.setattr(Warehouse, "_repair_parquet", lambda self: repairs.append(1))
    with Warehouse(written):
        pass
    assert repairs == []


def test_the_old_read_path_did_leave_the_marker(written: Path) -> None:
    # Why readers must not use the writer's connection: it marks the projection dirty until an export.
    warehouse = Warehouse(written)
    with warehouse:
        with warehouse.connection() as con:
            con.execute("select 1").fetchall()
        assert (written / DIRTY_MARKER_NAME).exists()
    assert (written / DIRTY_MARKER_NAME).exists()


def test_readers_share_and_wait_for_a_writer(written: Path) -> None:
    with open_reader(written, timeout=1) as first, open_reader(written, timeout=1) as second:  # no writer lock
        assert first.execute("select 1").fetchone() == second.execute("select 1").fetchone()
    holder = Warehouse(written)
    holder.__enter__()
    try:
        with pytest.raises(WarehouseBusyError, match="being written by another run"), open_reader(written, timeout=0.3):
            pass
        release = threading.Timer(0.5, lambda: holder.__exit__(None, None, None))
        release.start()
        started = time.monotonic()
        with open_reader(written, timeout=10) as con:  # waits for the writer's step to end
            assert con.execute("select count(*) from fc_accounts").fetchone()[0] > 0
        assert time.monotonic() - started >= 0.4
        release.join()
    finally:
        holder.__exit__(None, None, None)


def test_a_missing_warehouse_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no warehouse at") as raised, open_reader(tmp_path / "none"):
        pass
    assert len(str(raised.value).splitlines()) == 1
    assert not (tmp_path / "none").exists()
    assert not (tmp_path / "none" / LOCK_FILE_NAME).exists()


def test_marts_built_then_killed_before_their_first_export_get_their_files_on_the_next_open(written: Path) -> None:
    # As kill -9 leaves it: the marts committed in DuckDB, never exported (no export record), the marker left.
    with Warehouse(written) as warehouse, warehouse.connection() as con:
        build_marts(con, datetime.now(UTC))
    assert (written / DIRTY_MARKER_NAME).exists()
    with Warehouse(written):
        pass
    with open_reader(written) as con:
        for table in ("fc_daily_balances", "fc_underwriting_features", "fc_latest_balances"):
            in_duckdb = con.execute(f"select count(*) from {table}").fetchone()[0]
            assert in_duckdb > 0
            in_parquet = ds.dataset(written / "parquet" / table, format="parquet", partitioning="hive").count_rows()
            assert in_parquet == in_duckdb, table
