"""The contract check passes a healthy warehouse and names each way a broken one breaks the contract."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.contract.check import check_warehouse
from pipelines.warehouse import Warehouse
from tests.iceberg_tables import catalog_of
from tests.unit.test_warehouse import make_batch, sample_accounts


def filled(directory: Path) -> Path:
    with Warehouse(directory) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish()
    return directory


def test_healthy_warehouse_keeps_the_contract(tmp_path: Path) -> None:
    assert check_warehouse(filled(tmp_path / "wh")) == []


def test_a_relative_warehouse_path_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filled(tmp_path / "wh")
    monkeypatch.chdir(tmp_path)  # `fc-balances check --warehouse wh`, as a user types it
    assert check_warehouse(Path("wh")) == []
    setting = json.dumps({"type": "sql", "uri": f"sqlite:///{tmp_path / 'wh' / 'iceberg' / 'catalog.db'}",
                          "warehouse": (tmp_path / "wh" / "iceberg").as_uri()})
    assert check_warehouse("wh", setting) == []  # the catalog named by its properties, as in production


def test_each_breach_is_named(tmp_path: Path) -> None:
    warehouse = filled(tmp_path / "wh")
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("delete from fc_accounts where account_id = 'fca_1'")  # DuckDB and Iceberg now differ
        con.execute("update fc_balances set used_minor = 1 where balance_type = 'cash'")
        con.execute("update fc_balance_refreshes set outcome = 'exploded'")
        con.execute("drop table fc_rejected_balances")
    problems = check_warehouse(warehouse)
    assert "fc_accounts: 4 rows in the current Iceberg snapshot, 3 in DuckDB" in problems, problems
    assert any("cash rows with used" in p for p in problems), problems
    unknown_outcome = "fc_balance_refreshes.outcome: values outside the declared set: ['exploded']"
    assert unknown_outcome in problems, problems
    assert "fc_rejected_balances: missing" in problems


def test_an_unpublished_table_is_named(tmp_path: Path) -> None:
    warehouse = filled(tmp_path / "wh")
    catalog_of(warehouse).drop_table(("fc_balances", "fc_events"))
    assert check_warehouse(warehouse) == ["fc_events: no Iceberg table fc_balances.fc_events in the catalog"]


def test_missing_database_is_one_problem(tmp_path: Path) -> None:
    assert check_warehouse(tmp_path) == [f"no DuckDB file at {tmp_path / 'fc_balances.duckdb'}"]
