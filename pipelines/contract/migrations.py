"""Brings a warehouse's schema to the declared version: new ones from the declarations, old ones by migrations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import duckdb

from pipelines.contract.schema import all_live_columns, column_problems, create_table_sql, live_columns
from pipelines.contract.tables import TABLES
from pipelines.sql import load_sql

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
BASELINE_VERSION = 1  # release 0.1.0: a warehouse with fc_balances and no fc_schema_migrations


class SchemaVersionError(Exception):
    """The warehouse's schema cannot be brought to this code's version; one line, nothing written."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class MigrationResult:
    from_version: int | None  # None: a new warehouse
    to_version: int
    changed_tables: tuple[str, ...]  # tables whose columns changed (their Iceberg partitions are republished)

    @property
    def applied(self) -> bool:
        return self.from_version != self.to_version


@cache
def migrations() -> tuple[Migration, ...]:
    """Every sql/migrations/NNNN_name.sql, numbered 1, 2, 3, ... with no gap and no number twice: a missing file
    would leave a warehouse short of a change, so the code refuses to run without it."""
    folder = resources.files("sql").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if match := _FILE.match(entry.name):
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise SchemaVersionError(f"sql/migrations must be numbered 1..N, each number once: {numbers}")
    return tuple(found)


def current_version() -> int:
    return migrations()[-1].version


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(live_columns(con, name))


def warehouse_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version a DuckDB file is at; None for a file with no warehouse tables yet."""
    if _has_table(con, "fc_schema_migrations"):
        row = con.execute(load_sql("warehouse/schema_version")).fetchone()
        if row and row[0] is not None:
            return int(row[0])
    if _has_table(con, "fc_balances"):
        return BASELINE_VERSION
    return None


def refuse_newer(version: int | None, where: str) -> None:
    if version is not None and version > current_version():
        raise SchemaVersionError(
            f"warehouse {where} is at schema version {version}, newer than this fc-balances "
            f"(schema version {current_version()}): upgrade fc-balances to use it"
        )


def _shapes(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    live = all_live_columns(con)
    return {name: live.get(name, {}) for name in TABLES}


def _record(con: duckdb.DuckDBPyConnection, migration: Migration, now: datetime) -> None:
    con.execute(
        load_sql("warehouse/record_migration"),
        {"version": migration.version, "name": migration.name, "applied_at": now},
    )


def migrate(con: duckdb.DuckDBPyConnection, where: str) -> MigrationResult:
    """Create or upgrade the schema in ONE transaction, then check it equals the declarations.

    A crash anywhere before COMMIT leaves the warehouse exactly as it was, so the next open starts over; the
    publish bookkeeping of every table whose columns changed is dropped in the same transaction, so the next
    publish evolves its Iceberg schema (`update_schema`) and republishes every partition.
    """
    version = warehouse_version(con)
    refuse_newer(version, where)
    target = current_version()
    if version == target:
        _verify(con, where)
        return MigrationResult(version, target, ())
    now = datetime.now(UTC)
    before = _shapes(con)
    con.execute("BEGIN TRANSACTION")
    try:
        if version is None:
            # A new warehouse: the declared shapes directly, stamped with every migration.
            for name in TABLES:
                con.execute(create_table_sql(name))
            con.execute(load_sql("marts/create_views"))  # what migration 0003 gives an upgraded warehouse
            pending = migrations()
        else:
            pending = tuple(m for m in migrations() if m.version > version)
            for migration in pending:
                con.execute(migration.sql)
        for migration in migrations():  # an upgraded 0.1.0 warehouse gets its baseline recorded too
            _record(con, migration, now)
        after = _shapes(con)
        changed = tuple(name for name in TABLES if before[name] and before[name] != after[name])
        for name in changed:
            con.execute(load_sql("warehouse/forget_published_table"), {"table_name": name})
        problems = _problems(con)
        if problems:
            raise SchemaVersionError(f"migrating {where} to schema version {target} left {problems[0]}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return MigrationResult(version, target, changed)


def _problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    problems: list[str] = []
    shapes = _shapes(con)
    for name in TABLES:
        live = shapes[name]
        problems += column_problems(name, live) if live else [f"{name}: missing"]
    return problems


def _verify(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """A warehouse that claims the current version must have the declared shape (catches hand edits)."""
    problems = _problems(con)
    if problems:
        raise SchemaVersionError(
            f"warehouse {where} claims schema version {current_version()} but {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
