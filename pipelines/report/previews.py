"""A mart's preview for the Dagster UI as plain values: its first rows as Markdown and its numeric summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from pipelines.marts.specs import MART_SPECS
from pipelines.report import fmt
from pipelines.sql import load_sql

PREVIEW_ROWS = 10
PREVIEW_COLUMNS = 12
HIDDEN_COLUMNS = frozenset({"built_at"})  # one value for the whole mart, already in the metadata


class PreviewError(ValueError):
    """The table to preview is not in the warehouse."""


@dataclass(frozen=True)
class MartPreview:
    markdown: str
    row_count: int
    # Float summaries Dagster can plot over time: accounts_with_negative_days, cash_available_<currency> (major
    # units). A summary the mart's columns cannot give is left out.
    numbers: dict[str, float] = field(default_factory=dict)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [name for (name,) in con.execute(load_sql("report/table_columns"), {"table": table}).fetchall()]


def _shown_columns(columns: list[str]) -> list[str]:
    """Minor-unit columns stand for their exact major twin (`current` for `current_minor`), which is left out."""
    names = set(columns)
    twins = {name.removesuffix("_minor") for name in names if name.endswith("_minor")}
    return [name for name in columns if name not in HIDDEN_COLUMNS and name not in twins]


def _cell(name: str, value: Any, currency: str | None) -> str:
    if value is None:
        text = ""
    elif name.endswith("_minor") and currency and isinstance(value, int | float):
        text = fmt.money(value, currency, code=False)
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, float):
        text = f"{value:,.2f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(table: str, names: list[str], rows: list[tuple[Any, ...]], row_count: int) -> str:
    shown = _shown_columns(names)
    cut = len(shown) > PREVIEW_COLUMNS
    shown = shown[:PREVIEW_COLUMNS]
    positions = [names.index(name) for name in shown]
    currency_at = names.index("currency") if "currency" in names else None
    headers = [name.removesuffix("_minor") for name in shown]
    lines = [f"**{table}**: first {len(rows)} of {row_count:,} rows"
             + (f", first {PREVIEW_COLUMNS} columns" if cut else "")
             + "; amounts in major units of the row's currency, Stripe's sign.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        currency = row[currency_at] if currency_at is not None else None
        lines.append("| " + " | ".join(_cell(names[i], row[i], currency) for i in positions) + " |")
    return "\n".join(lines)


def mart_preview(
    con: duckdb.DuckDBPyConnection, table: str, limit: int = PREVIEW_ROWS, days: tuple[date, date] | None = None
) -> MartPreview:
    """The preview of `table` (a mart) as plain values; reads only, on the caller's connection.

    `days` limits a partitioned mart to the days a run built, so a daily run's preview reads one day, not history.
    """
    columns = _columns(con, table)
    if not columns:
        raise PreviewError(f"no table {table} in the warehouse")
    # `table` is interpolated as a name only after the warehouse's catalog confirmed it exists; the partition
    # column comes from the mart's spec, the days are bound.
    spec = MART_SPECS.get(table)
    source, scope = table, {}
    if days is not None and spec is not None and spec.partition_column is not None:
        source = f"(SELECT * FROM {table} WHERE {spec.partition_column} BETWEEN $scope_first AND $scope_last)"
        scope = {"scope_first": days[0], "scope_last": days[1]}
    (row_count,) = con.execute(load_sql("report/preview_count").format(table=source), scope).fetchone() or (0,)
    cursor = con.execute(load_sql("report/preview_rows").format(table=source), scope | {"limit": limit})
    names = [column[0] for column in cursor.description]
    markdown = _markdown(table, names, cursor.fetchall(), int(row_count))

    numbers: dict[str, float] = {}
    negative = spec.negative_preview if spec is not None else None
    if negative:
        (count,) = con.execute(load_sql(negative).format(table=source), scope).fetchone() or (0,)
        numbers["accounts_with_negative_days"] = float(count)
    cash = spec.cash_preview if spec is not None else None
    if cash:
        for currency, total in con.execute(load_sql(cash).format(table=source), scope).fetchall():
            numbers[f"cash_available_{currency}"] = float(fmt.major(total, currency))
    return MartPreview(markdown=markdown, row_count=int(row_count), numbers=numbers)
