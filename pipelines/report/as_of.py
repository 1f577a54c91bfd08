"""The report's tables as their Iceberg snapshots stood at a past time, in an in-memory DuckDB (time travel)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression, In

from pipelines.contract.schema import quote
from pipelines.settings import env_text
from pipelines.sql import load_sql
from pipelines.warehouse import WarehouseError
from pipelines.warehouse.catalog import catalog_properties, load_table, open_catalog
from pipelines.warehouse.snapshots import snapshot_at

# What the report reads; fc_balances only for telling an unknown customer from one without accounts.
REPORT_TABLES = ("fc_accounts", "fc_balances", "fc_balance_refreshes", "fc_latest_balances", "fc_daily_balances",
                 "fc_underwriting_features", "fc_customer_liquidity")
_EPOCH = date(1970, 1, 1)


class AsOfError(ValueError):
    """The tables cannot be read as of that time; one line."""


def parse_as_of(text: str) -> datetime:
    """A time like 2026-11-30T12:00Z (a time without a zone is taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AsOfError(f"--as-of must be a time like 2026-11-30T12:00Z, got {text[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _scan(catalog: Catalog, name: str, as_of: datetime, row_filter: BooleanExpression) -> tuple[pa.Table, int | None]:
    """The table's rows matching the filter at the snapshot current at `as_of`, and its newest day partition."""
    table = load_table(catalog, name)
    snapshot = snapshot_at(table, as_of)
    if snapshot is None:
        if name == "fc_accounts":
            raise AsOfError(f"fc_balances.fc_accounts had no snapshot yet at {as_of.isoformat()} "
                            "(nothing was published by then, or its snapshots were expired by a forget)")
        return table.schema().as_arrow().empty_table(), None
    scan = table.scan(row_filter=row_filter, snapshot_id=snapshot.snapshot_id)
    newest = None
    if name == "fc_daily_balances":  # the report's window ends on the newest day of the whole mart, not of the few
        days = [task.file.partition[0] for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()]
        newest = max((d for d in days if d is not None), default=None)
    return scan.to_arrow(), newest


@contextmanager
def open_as_of(directory: str | Path, as_of: datetime, customers: list[str]) -> Iterator[tuple[
        duckdb.DuckDBPyConnection, date | None]]:
    """An in-memory DuckDB (UTC) holding the report's tables for `customers` as they stood at `as_of`, and the
    newest day the daily mart then reached."""
    folder = Path(directory).expanduser().absolute()
    try:
        catalog = open_catalog(catalog_properties(folder, env_text("FC_BALANCES_ICEBERG_CATALOG")))
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        newest: date | None = None
        accounts: list[str] = []
        for name in REPORT_TABLES:
            declared_filter: BooleanExpression = AlwaysTrue()
            if name == "fc_balance_refreshes":
                declared_filter = In("account_id", accounts) if accounts else AlwaysFalse()
            else:
                declared_filter = In("customer_id", customers) if customers else AlwaysFalse()
            rows, newest_day = _scan(catalog, name, as_of, declared_filter)
            if name == "fc_accounts":
                accounts = [a for a in rows.column("account_id").to_pylist() if a]
            if newest_day is not None:
                newest = _EPOCH + timedelta(days=int(newest_day))
            con.register("snapshot_rows", rows)
            con.execute(f"CREATE TABLE {quote(name)} AS SELECT * FROM snapshot_rows")
            con.unregister("snapshot_rows")
        con.execute(load_sql("marts/create_views"))
    except WarehouseError as exc:
        raise AsOfError(str(exc)) from None
    try:
        yield con, newest
    finally:
        con.close()
