"""A run's marts share one open of the warehouse: the DuckDB file opened once, and closed (lock released) when the
run ends, when a step fails inside it, or before another open of the same resource."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import assets.marts
import pipelines.warehouse.store as store
from pipelines.resources import WarehouseResource
from pipelines.warehouse import Warehouse
from tests.marts.conftest import create_warehouse
from tests.marts.test_assets import materializations, materialize_marts


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    create_warehouse(tmp_path / "fc_balances.duckdb").close()
    return tmp_path


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every open of the DuckDB file for writing, as it happens."""
    seen: list[bool] = []
    real = store._connect_waiting
    monkeypatch.setattr(store, "_connect_waiting",
                        lambda path, read_only, timeout: seen.append(read_only) or real(path, read_only, timeout))
    return seen


def assert_released(warehouse_dir: Path) -> None:
    """Nothing of the run holds the writer lock or the DuckDB file."""
    with Warehouse(warehouse_dir, lock_timeout=0, publishing=False) as warehouse, warehouse.reading() as con:
        con.execute("SELECT 1")


def test_a_run_of_the_marts_opens_the_file_once(warehouse_dir: Path, opens: list[bool]) -> None:
    result = materialize_marts(warehouse_dir)
    assert result.success and len(materializations(result)) == 5
    assert opens == [False]  # five marts, one open (it was one per mart)
    assert_released(warehouse_dir)


def test_a_failing_mart_closes_the_shared_open_and_the_next_mart_opens_again(
        warehouse_dir: Path, opens: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    real = assets.marts.build_table

    def build_table(con: duckdb.DuckDBPyConnection, table: str, *args: object) -> int:
        if table == "fc_latest_balances":
            raise RuntimeError("latest balances broke")
        return real(con, table, *args)

    monkeypatch.setattr(assets.marts, "build_table", build_table)
    result = materialize_marts(warehouse_dir)
    assert not result.success
    # Health and daily before the failure, then features after it on a new open; liquidity reads the failed mart.
    assert set(materializations(result)) == {"fc_account_health", "fc_daily_balances", "fc_underwriting_features"}
    assert opens == [False, False]
    assert_released(warehouse_dir)
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM fc_underwriting_features").fetchone()[0] > 0


def test_another_open_of_the_resource_closes_the_shared_one_first(warehouse_dir: Path) -> None:
    """A step that opens the warehouse its own way after a mart (the same resource, the same process) would wait for
    the shared open's lock; the resource closes it first."""
    resource = WarehouseResource(directory=str(warehouse_dir), lock_timeout_seconds=0)
    with resource.shared_connection() as (_, con):
        con.execute("SELECT 1")
    with resource.open(publishing=False) as warehouse, warehouse.reading() as con:
        con.execute("SELECT 1")
    with resource.shared_connection() as (_, con):
        con.execute("SELECT 1")
    with resource.reader() as con:
        con.execute("SELECT 1")
    resource.close_shared()
    assert_released(warehouse_dir)
