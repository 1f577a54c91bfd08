"""Read-only access: no writer lock, nothing left behind for the next writer; it waits for a writing step."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.marts.build import build_marts
from pipelines.warehouse import (
    LOCK_FILE_NAME,
    Warehouse,
    WarehouseBusyError,
    WarehouseError,
    open_reader,
)
from tests.iceberg_tables import duckdb_rows, iceberg_rows
from tests.unit.test_warehouse import make_batch, sample_accounts


@pytest.fixture
def written(tmp_path: Path) -> Path:
    folder = tmp_path / "wh"
    with Warehouse(folder) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish()
    return folder


def test_a_reader_is_read_only_and_leaves_nothing_to_publish(written: Path) -> None:
    with open_reader(written) as con:
        assert con.execute("select count(*) from fc_balances").fetchone()[0] > 0
        assert con.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
        with pytest.raises(duckdb.Error):  # read-only for real
            con.execute("delete from fc_balances")
    with Warehouse(written) as warehouse:
        assert set(warehouse.publish(run_id="after_reader").values()) == {0}


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


def test_mart_days_built_then_killed_before_their_publish_go_out_with_the_next_build(written: Path) -> None:
    # As kill -9 leaves it: the marts committed in DuckDB, never published.
    with Warehouse(written) as warehouse, warehouse.connection() as con:
        build_marts(con, datetime.now(UTC))
    with open_reader(written) as con:
        days = [row[0] for row in con.execute("select distinct day from fc_daily_balances order by 1").fetchall()]
    assert len(days) > 1
    with Warehouse(written) as warehouse:
        # the next build's publish covers only its own last day, and the days a crash left unpublished
        published = warehouse.publish(["fc_daily_balances", "fc_underwriting_features"], days=(days[-1], days[-1]))
        assert published["fc_daily_balances"] > 0
        warehouse.publish(["fc_latest_balances", "fc_customer_liquidity"])
    for table in ("fc_daily_balances", "fc_underwriting_features", "fc_latest_balances"):
        held = duckdb_rows(written, table)
        assert held and iceberg_rows(written, table) == held, table
