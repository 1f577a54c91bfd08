"""The marts as Dagster runs them: a real warehouse folder, DuckDB and Parquet; blocking checks stop the marts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.checks import CHECKS, CURRENCIES_VALID
from assets.marts import MART_ASSETS, marts_job
from pipelines.marts import MART_TABLES
from pipelines.resources import WarehouseResource
from pipelines.tables import TABLES
from tests.marts.conftest import create_warehouse

MART_CHECKS = [c for c in CHECKS if {k.asset_key.to_user_string() for k in c.check_keys} <= set(MART_TABLES)]


def materialize_marts(warehouse_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*MART_ASSETS, *MART_CHECKS],
        resources={"warehouse": WarehouseResource(directory=str(warehouse_dir))},
        raise_on_error=False,
    )


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    create_warehouse(tmp_path / "fc_balances.duckdb").close()
    return tmp_path


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}


def test_marts_build_from_the_warehouse_and_export_parquet(warehouse_dir: Path) -> None:
    before = datetime.now(UTC)
    result = materialize_marts(warehouse_dir)
    after = datetime.now(UTC)
    assert result.success
    done = materializations(result)
    assert set(done) == set(MART_TABLES)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        for table in MART_TABLES:
            (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert rows > 0
            assert done[table].metadata["dagster/row_count"].value == rows
            parquet = str(warehouse_dir / "parquet" / table / "**" / "*.parquet")
            assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [parquet]).fetchone() == (rows,)
            # One build time per mart, taken during the run and reported in the metadata.
            (built_at,) = con.execute(f"SELECT DISTINCT built_at FROM {table}").fetchall()
            assert before <= built_at[0] <= after
            assert built_at[0].timestamp() == pytest.approx(done[table].metadata["built_at"].value, abs=1e-3)
        # The funds-check macro ships with the marts.
        row = con.execute("SELECT basis FROM fc_sufficient_funds('fca_fallback', 1, 'usd')").fetchone()
        assert row == ("current_fallback",)


def test_declared_column_schemas_match_the_built_tables(warehouse_dir: Path) -> None:
    assert materialize_marts(warehouse_dir).success
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb"), read_only=True) as con:
        for table in MART_TABLES:
            described = [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
            assert described == [(c.name, c.type) for c in TABLES[table].columns], table


def test_a_blocking_check_failure_stops_the_marts_downstream(warehouse_dir: Path) -> None:
    with duckdb.connect(str(warehouse_dir / "fc_balances.duckdb")) as con:
        con.execute("UPDATE fc_balances SET currency = 'xyz' WHERE account_id = 'fca_old'")
    result = materialize_marts(warehouse_dir)
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed}
    assert failed == {("fc_latest_balances", CURRENCIES_VALID), ("fc_daily_balances", CURRENCIES_VALID)}
    assert set(materializations(result)) == {"fc_latest_balances", "fc_daily_balances"}


def test_asset_graph_and_job() -> None:
    deps = {a.key.to_user_string(): {k.to_user_string() for k in a.asset_deps[a.key]} for a in MART_ASSETS}
    assert deps == {
        "fc_latest_balances": {"fc_balances", "fc_accounts"},
        "fc_daily_balances": {"fc_balances", "fc_accounts"},
        "fc_underwriting_features": {"fc_balances", "fc_accounts", "fc_latest_balances", "fc_daily_balances"},
        "fc_customer_liquidity": {"fc_balances", "fc_accounts", "fc_latest_balances"},
    }
    for asset in MART_ASSETS:
        spec = next(iter(asset.specs))
        assert spec.group_name == "marts" and set(spec.kinds) == {"duckdb", "parquet"}
    defs = dg.Definitions(assets=MART_ASSETS, asset_checks=CHECKS, jobs=[marts_job],
                          resources={"warehouse": WarehouseResource(directory="unused")})
    assert defs.resolve_job_def("fc_marts_job")  # the selection resolves
