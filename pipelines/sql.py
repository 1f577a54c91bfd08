"""Loads the project's DuckDB SQL files from the `sql` package by name."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_sql(name: str) -> str:
    """Return the text of `sql/<name>.sql`, e.g. `load_sql("marts/fc_latest_balances")`."""
    path = resources.files("sql").joinpath(*f"{name}.sql".split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file sql/{name}.sql")
    return path.read_text(encoding="utf-8")
