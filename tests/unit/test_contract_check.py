"""The contract check passes a healthy warehouse and names each way a broken one breaks the contract."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.contract.check import check_warehouse
from pipelines.warehouse import Warehouse
from tests.unit.test_warehouse import make_batch, sample_accounts


def filled(directory: Path) -> Path:
    with Warehouse(directory) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.export_parquet()
    return directory


def test_healthy_warehouse_keeps_the_contract(tmp_path: Path) -> None:
    assert check_warehouse(filled(tmp_path / "wh")) == []


def test_a_relative_warehouse_path_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filled(tmp_path / "wh")
    monkeypatch.chdir(tmp_path)  # `fc-balances check --warehouse wh`, as a user types it
    assert check_warehouse(Path("wh")) == []
    assert check_warehouse("wh", "wh/parquet") == []


def test_each_breach_is_named(tmp_path: Path) -> None:
    warehouse = filled(tmp_path / "wh")
    (warehouse / "parquet" / "fc_accounts" / "fc_accounts.parquet").unlink()
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.execute("update fc_balances set used_minor = 1 where balance_type = 'cash'")
        con.execute("update fc_balance_refreshes set outcome = 'exploded'")
        con.execute("drop table fc_rejected_balances")
    problems = check_warehouse(warehouse)
    assert any(p.startswith("fc_accounts: no Parquet") for p in problems), problems
    assert any("cash rows with used" in p for p in problems), problems
    unknown_outcome = "fc_balance_refreshes.outcome: values outside the declared set: ['exploded']"
    assert unknown_outcome in problems, problems
    assert "fc_rejected_balances: missing" in problems


def test_missing_database_is_one_problem(tmp_path: Path) -> None:
    assert check_warehouse(tmp_path) == [f"no DuckDB file at {tmp_path / 'fc_balances.duckdb'}"]
