"""Generates DDL, Arrow schemas and README tables from the declarations in contract/tables.py, and diffs a live DB."""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from pipelines.contract.tables import TABLES, Table
from pipelines.sql import load_sql

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_SCALARS: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no declared table {name!r}") from None


def quote(identifier: str) -> str:
    """A declared name as a DuckDB identifier (declarations hold only [a-z_0-9] names; some are reserved words)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", identifier):
        raise ValueError(f"not a plain identifier: {identifier!r}")
    return f'"{identifier}"'


def arrow_type(duckdb_type: str) -> pa.DataType:
    """The Arrow type a DuckDB type (as information_schema spells it) round-trips through."""
    if duckdb_type.endswith("[]"):
        return pa.list_(arrow_type(duckdb_type[:-2]))
    if match := _DECIMAL.match(duckdb_type):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    try:
        return _SCALARS[duckdb_type]
    except KeyError:
        raise ValueError(f"no Arrow type for DuckDB type {duckdb_type!r}") from None


def arrow_schema(name: str) -> pa.Schema:
    """The table's Arrow schema, nullability included (what the normalizer builds and DuckDB stores)."""
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in table(name).columns])


def create_table_sql(name: str) -> str:
    """CREATE TABLE IF NOT EXISTS for the declared shape (a new warehouse; old ones are migrated)."""
    declared = table(name)
    lines = [
        f"    {quote(c.name)} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in declared.columns
    ]
    if declared.key and declared.enforce_key:
        lines.append(f"    PRIMARY KEY ({', '.join(quote(k) for k in declared.key)})")
    body = ",\n".join(lines)
    return f"-- {declared.description}\nCREATE TABLE IF NOT EXISTS {quote(name)} (\n{body}\n);"


def live_columns(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table as the database holds it; empty when the table is missing."""
    return dict(con.execute(load_sql("contract/columns"), [name]).fetchall())


def all_live_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """live_columns of every table at once: table name -> column name -> DuckDB type."""
    tables: dict[str, dict[str, str]] = {}
    for table_name, column, kind in con.execute(load_sql("contract/all_columns")).fetchall():
        tables.setdefault(table_name, {})[column] = kind
    return tables


def column_problems(name: str, live: dict[str, str]) -> list[str]:
    """How a live table's columns differ from its declaration, one line each."""
    declared = table(name)
    want = {c.name: c.type for c in declared.columns}
    problems = [
        f"{name}.{column}: want {kind}, got {live.get(column) or 'nothing'}"
        for column, kind in want.items()
        if live.get(column) != kind
    ]
    problems += [f"{name}.{column}: not declared" for column in live if column not in want]
    if not problems and list(live) != list(want):
        problems.append(f"{name}: columns in order {', '.join(live)}, declared {', '.join(want)}")
    return problems


# ------------------------------------------------------------------------------------------- README


def readme_tables(groups: tuple[str, ...] | None = None) -> str:
    """The README's table reference: one heading, description and column table per documented table."""
    sections = []
    for declared in TABLES.values():
        if not declared.readme or (groups is not None and declared.group not in groups):
            continue
        rows = ["| column | type | null | meaning |", "|---|---|---|---|"]
        for c in declared.columns:
            meaning = c.description.replace("|", "\\|")
            rows.append(f"| {c.name} | {c.type} | {'yes' if c.nullable else 'no'} | {meaning} |")
        facts = [f"group `{declared.group}`"]
        if declared.key:
            facts.append(f"key ({', '.join(declared.key)})")
        if declared.exported:
            where = f", partitioned by `{declared.partition.describe()}`" if declared.partition else ""
            facts.append(f"Iceberg table `fc_balances.{declared.name}`{where}")
        else:
            facts.append("DuckDB only, not published to Iceberg")
        sections.append(
            f"#### `{declared.name}`\n{declared.description} ({'; '.join(facts)})\n\n" + "\n".join(rows)
        )
    return "\n\n".join(sections) + "\n"


def readme_block(name: str) -> re.Pattern[str]:
    """The README's generated block `name` (tables, settings): its begin marker, body and end marker."""
    return re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.S)


_README_BLOCK = readme_block("tables")


def write_readme(path: str = "README.md") -> bool:
    """Rewrite the README's generated blocks (the table reference, the settings table); True when one changed."""
    from pipelines.settings import readme_settings

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    updated = text
    for name, body in (("tables", readme_tables()), ("settings", readme_settings())):
        block = readme_block(name)
        if not block.search(updated):
            raise SystemExit(f"{path} has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
        updated = block.sub(lambda m, body=body: m.group(1) + body + m.group(3), updated)
    if updated != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(updated)
    return updated != text


if __name__ == "__main__":  # `python -m pipelines.contract.schema readme` (or `make docs`)
    import sys

    if sys.argv[1:] != ["readme"]:
        raise SystemExit("usage: python -m pipelines.contract.schema readme")
    print("README.md tables and settings " + ("updated" if write_readme() else "already up to date"))
