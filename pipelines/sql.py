"""Loads the project's DuckDB SQL files from the `sql` package by name."""

from __future__ import annotations

from functools import cache
from importlib import resources

CONTRACT_TABLES = ("fc_accounts", "fc_balances", "fc_balance_refreshes", "fc_rejected_balances")


@cache
def load_sql(name: str) -> str:
    """Return the text of `sql/<name>.sql`, e.g. `load_sql("ddl/fc_balances")`."""
    path = resources.files("sql").joinpath(*f"{name}.sql".split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file sql/{name}.sql")
    return path.read_text(encoding="utf-8")


def contract_ddl() -> list[str]:
    """CREATE TABLE statements for the contract tables, in dependency order."""
    return [load_sql(f"ddl/{table}") for table in CONTRACT_TABLES]
