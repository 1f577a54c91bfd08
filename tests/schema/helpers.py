"""Test scaffolding for schema changes: a 0.1.0 warehouse from the kept fixture, and a simulated new column."""

from __future__ import annotations

import dataclasses
import tarfile
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract import migrations
from pipelines.contract.tables import TABLES, Column

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "warehouse_0_1_0.tar.gz"
# Release 0.2.0 (commit ab61a0a): a 3-day history run of 4 demo customers on the built-in sandbox, marts built,
# with its Parquet mirror (parquet/) and the event store. Made by running that commit's code.
FIXTURE_0_2_0 = Path(__file__).resolve().parents[1] / "fixtures" / "warehouse_0_2_0.tar.gz"
NEW_COLUMN = Column("risk_tier", "VARCHAR", "a column a later release adds (test only)")


def unpack_0_1_0(target: Path) -> Path:
    """A warehouse folder exactly as release 0.1.0 (commit d707548) left it: a history run plus one event."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(target, filter="data")
    return target


def unpack_0_2_0(target: Path) -> Path:
    """A warehouse folder exactly as release 0.2.0 left it: DuckDB at schema version 5 plus parquet/."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FIXTURE_0_2_0) as archive:
        archive.extractall(target, filter="data")
    return target


def table_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every user table, sorted, read-only."""
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        names = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND NOT starts_with(table_name, '_') AND table_name <> 'fc_schema_migrations'"
        ).fetchall()]
        return {name: sorted(con.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}


def kept_rows(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """What an upgrade lost or changed, table by table, on the columns the old release had (later migrations add
    columns at the end). fc_underwriting_features may only lose rows: migration 0006 drops those past the bound."""
    problems = []
    for table, rows in before.items():
        width = len(rows[0]) if rows else 0
        now = sorted((row[:width] for row in after.get(table, [])), key=repr)
        if table == "fc_underwriting_features":
            if not set(now) <= set(rows):
                problems.append(f"{table}: rows the old release did not have")
        elif now != rows:
            problems.append(f"{table}: {len(rows)} rows before, {len(now)} after, or changed values")
    return problems


def add_column_release() -> tuple[migrations.Migration, ...]:
    """Simulate the next release adding fc_accounts.risk_tier: one declaration edit plus one migration file.

    Returns the patched migration list; callers undo the patch (pytest's monkeypatch does it for tests).
    """
    accounts = TABLES["fc_accounts"]
    TABLES["fc_accounts"] = dataclasses.replace(accounts, columns=(*accounts.columns, NEW_COLUMN))
    shipped = migrations.migrations()
    added = migrations.Migration(
        shipped[-1].version + 1, "add_risk_tier", "ALTER TABLE fc_accounts ADD COLUMN risk_tier VARCHAR;"
    )
    patched = (*shipped, added)
    migrations.migrations = lambda: patched  # type: ignore[method-assign]
    return patched
