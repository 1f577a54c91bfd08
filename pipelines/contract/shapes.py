"""The shapes of the declarations: a column and a table (tables.py declares every table with them)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contract.partition import Partition


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
    group: str  # who owns and writes it: stripe_fc (ingest), events, marts, warehouse (bookkeeping), policy (users),
    # funds (the funds service's decisions)
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique per row; enforced as PRIMARY KEY where `enforce_key`
    enforce_key: bool = True
    partition: Partition | None = None  # the Iceberg partition of an exported table; None: unpartitioned
    exported: bool = True  # published as an Iceberg table
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
