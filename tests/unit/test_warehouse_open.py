"""Opening the warehouse: a read of what to rebuild leaves the catalog closed; a kept connection serves one call."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.warehouse import Warehouse, WarehouseError


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


def test_a_kept_connection_serves_the_first_call_only(warehouse_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """keep_connected: the open's migration connection is the block's first call (one open of the file, not two);
    later calls and a block without calls open and close as before."""
    import pipelines.warehouse.store as store

    opens: list[bool] = []
    real = store._connect_waiting
    monkeypatch.setattr(store, "_connect_waiting", lambda *a, **k: opens.append(True) or real(*a, **k))
    with Warehouse(warehouse_dir, keep_connected=True) as warehouse:
        with warehouse.connection() as con:
            con.execute("SELECT 1")
        assert len(opens) == 1
        with warehouse.reading():
            pass
        assert len(opens) == 2
    with Warehouse(warehouse_dir, keep_connected=True):
        pass  # kept, unused: closed at the exit
    with Warehouse(warehouse_dir) as warehouse, warehouse.connection():
        pass
    assert len(opens) == 5


def test_a_read_of_what_to_rebuild_leaves_the_catalog_closed(warehouse_dir: Path) -> None:
    """publishing=False (the marts' out-of-date read): DuckDB created and migrated, no catalog opened or made."""
    with Warehouse(warehouse_dir, publishing=False) as warehouse, warehouse.reading() as con:
        assert con.execute("SELECT count(*) FROM fc_balances").fetchone() == (0,)
    assert (warehouse_dir / "fc_balances.duckdb").exists() and not (warehouse_dir / "iceberg").exists()
    with Warehouse(warehouse_dir, publishing=False) as warehouse, \
            pytest.raises(WarehouseError, match="opened without its Iceberg catalog"):
        warehouse.publish()
