"""Shared helpers for pipeline integration tests: run the ingest asset against a sandbox, read the warehouse back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.balances import stripe_fc_ingest
from pipelines.resources import StripeResource, WarehouseResource


def stripe_resource(sandbox: Any, **overrides: Any) -> StripeResource:
    settings: dict[str, Any] = {
        "api_key": sandbox.api_key, "api_base": sandbox.base_url,
        "poll_interval_seconds": 0.05, "event_grace_seconds": 2.0, "refresh_timeout_seconds": 30.0,
    }
    settings.update(overrides)
    return StripeResource(**settings)


def run_ingest(sandbox: Any, warehouse: Path, **stripe_overrides: Any) -> dg.ExecuteInProcessResult:
    """Materialize the ingest multi-asset for real (Dagster, HTTP to the sandbox, DuckDB and Parquet files)."""
    return dg.materialize(
        [stripe_fc_ingest],
        resources={
            "stripe": stripe_resource(sandbox, **stripe_overrides),
            "warehouse": WarehouseResource(directory=str(warehouse)),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def published_rows(warehouse: Path, table: str, order_by: str) -> list[tuple[Any, ...]]:
    """The table's rows in its current Iceberg snapshot, read through the catalog."""
    from tests.iceberg_tables import iceberg_rows

    return iceberg_rows(warehouse, table, "*", order_by)


def metadata(result: dg.ExecuteInProcessResult, table: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key == dg.AssetKey(table):
            return {key: getattr(value, "value", value) for key, value in mat.metadata.items()}
    raise AssertionError(f"no materialization of {table}")
