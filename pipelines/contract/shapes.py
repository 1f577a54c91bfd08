"""The shapes a table declaration is made of: Column and Table (pipelines/contract/tables.py declares them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type as information_schema spells it, and what it means in one line."""

    name: str
    type: str
    description: str
    nullable: bool = True
    values: tuple[str, ...] | None = None  # a closed value set the column must stay within


@dataclass(frozen=True)
class Table:
    """One table of the warehouse."""

    name: str
    description: str
    group: str  # who owns and writes it: stripe_fc (ingest), events, marts, warehouse (bookkeeping), policy (users)
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique per row; enforced as PRIMARY KEY where `enforce_key`
    enforce_key: bool = True
    parquet_partition: str | None = None  # the hive folder Parquet files sit in, e.g. "as_of_date=<UTC day of as_of>"
    exported: bool = True  # projected to Parquet
    readme: bool = True  # documented in the README's tables section

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


TS = "TIMESTAMP WITH TIME ZONE"
AMOUNT = "DECIMAL(38,4)"
