"""One declaration per table: DDL, Arrow, Dagster schemas, migrations and the README all follow it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from assets.schemas import column_schema
from pipelines.contract import migrations
from pipelines.contract.migrations import current_version, migrate, warehouse_version
from pipelines.contract.schema import arrow_schema, arrow_type, create_table_sql, live_columns, readme_tables
from pipelines.contract.tables import TABLES
from pipelines.contract.values import (
    ATTEMPTED_OUTCOMES,
    FAILED_OUTCOMES,
    REFRESH_OUTCOMES,
    SAVED_OUTCOMES,
    SKIPPED_OUTCOMES,
    FundsRefreshOutcome,
    RefreshStatus,
)
from pipelines.settings import SETTINGS, readme_settings
from pipelines.sql import load_sql
from pipelines.stripe_fc.engine import OUTCOMES
from tests.schema.helpers import NEW_COLUMN, add_column_release

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def _information_schema(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, str]]:
    return con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()


@pytest.mark.parametrize("name", list(TABLES))
def test_ddl_arrow_and_dagster_schemas_follow_the_declaration(name: str) -> None:
    declared = TABLES[name]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(create_table_sql(name))
        assert _information_schema(con, name) == [
            (c.name, c.type, "YES" if c.nullable else "NO") for c in declared.columns
        ]
        # The table round-trips through Arrow with exactly the generated schema.
        empty = con.sql(f'SELECT * FROM "{name}"').to_arrow_table()
        assert empty.schema.remove_metadata().equals(
            pa.schema([f.with_nullable(True) for f in arrow_schema(name)])
        )
    assert [f.nullable for f in arrow_schema(name)] == [c.nullable for c in declared.columns]
    dagster = column_schema(name)
    assert [(c.name, c.type, c.description) for c in dagster.columns] == [
        (c.name, c.type, c.description) for c in declared.columns
    ]
    assert all("[" not in c.type or c.type.endswith("[]") for c in dagster.columns)  # DuckDB spelling, not Arrow


def test_every_type_maps_to_arrow_and_unknown_ones_fail() -> None:
    assert arrow_type("DECIMAL(38,4)") == pa.decimal128(38, 4)
    assert arrow_type("VARCHAR[]") == pa.list_(pa.string())
    with pytest.raises(ValueError, match="no Arrow type"):
        arrow_type("HUGEINT")


def test_a_new_warehouse_and_an_upgraded_0_1_0_one_have_the_same_shape() -> None:
    with duckdb.connect() as fresh, duckdb.connect() as upgraded:
        assert migrate(fresh, "fresh").from_version is None
        upgraded.execute(load_sql("migrations/0001_release_0_1_0"))
        assert warehouse_version(upgraded) == 1
        result = migrate(upgraded, "upgraded")
        assert (result.from_version, result.to_version) == (1, current_version())
        for name in TABLES:
            assert _information_schema(upgraded, name) == _information_schema(fresh, name), name
        recorded = [v for (v,) in upgraded.execute("SELECT version FROM fc_schema_migrations ORDER BY 1").fetchall()]
        assert recorded == [m.version for m in migrations.migrations()]  # every shipped one (reserved gaps skipped)


def test_adding_a_column_is_one_declaration_edit_plus_one_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TABLES, "fc_accounts", TABLES["fc_accounts"])  # restored after the test
    monkeypatch.setattr(migrations, "migrations", migrations.migrations)
    with duckdb.connect() as old:
        migrate(old, "old")  # a warehouse at today's version
        patched = add_column_release()
        assert "risk_tier" in create_table_sql("fc_accounts")
        assert arrow_schema("fc_accounts").field("risk_tier").type == pa.string()
        assert column_schema("fc_accounts").columns[-1].name == NEW_COLUMN.name
        result = migrate(old, "old")
        assert result.to_version == patched[-1].version
        assert result.changed_tables == ("fc_accounts",)
        assert list(live_columns(old, "fc_accounts"))[-1] == "risk_tier"
        with duckdb.connect() as fresh:
            migrate(fresh, "fresh")
            assert _information_schema(fresh, "fc_accounts") == _information_schema(old, "fc_accounts")


def test_a_declaration_edit_without_its_migration_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with duckdb.connect() as con:
        migrate(con, "here")
        accounts = TABLES["fc_accounts"]
        monkeypatch.setitem(TABLES, "fc_accounts", type(accounts)(
            **{**accounts.__dict__, "columns": (*accounts.columns, NEW_COLUMN)}))
        with pytest.raises(migrations.SchemaVersionError, match=r"fc_accounts\.risk_tier: want VARCHAR, got nothing"):
            migrate(con, "here")


def test_closed_value_sets_have_one_definition() -> None:
    assert OUTCOMES is REFRESH_OUTCOMES
    assert TABLES["fc_balance_refreshes"].column("outcome").values == REFRESH_OUTCOMES
    # The groups are made of declared outcomes; every outcome is attempted or skipped, never both.
    assert set(FAILED_OUTCOMES) < set(ATTEMPTED_OUTCOMES) and set(SAVED_OUTCOMES) <= set(SKIPPED_OUTCOMES)
    assert sorted(ATTEMPTED_OUTCOMES + SKIPPED_OUTCOMES) == sorted(REFRESH_OUTCOMES)


def _names(holder: type) -> set[str]:
    return {value for name, value in vars(holder).items() if name.isupper()}


def test_no_outcome_literal_outside_the_declarations() -> None:
    # Where outcomes and refresh statuses are produced or counted (webhook counters and the check's metadata keys
    # have words of their own).
    places = [*(REPO / "pipelines" / part for part in ("stripe_fc", "funds", "normalize", "report")),
              REPO / "assets" / "balances.py", REPO / "sql" / "checks", REPO / "sql" / "report"]
    files = [f for place in places for f in ([place] if place.is_file() else sorted(place.rglob("*.*")))
             if f.suffix in (".py", ".sql")]
    words = set(REFRESH_OUTCOMES) | _names(FundsRefreshOutcome) | _names(RefreshStatus)
    # A mapping key (`{"error": {...}}` in an HTTP answer) is a word of its own, not an outcome.
    literal = re.compile(r"""(['"])(""" + "|".join(sorted(words)) + r""")\1(?!\s*:)""")
    found = [f"{f.relative_to(REPO)}: {m.group(0)}" for f in files
             for m in literal.finditer(f.read_text(encoding="utf-8"))]
    assert len(files) > 20 and found == []


def test_the_readme_table_reference_is_generated_from_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- tables:begin -->\n(.*?)<!-- tables:end -->", text, re.S)
    assert match, "README lacks the <!-- tables:begin --> ... <!-- tables:end --> block"
    assert match.group(1) == readme_tables(), "README tables are stale: run `make docs`"


def test_the_readme_settings_table_is_generated_from_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert match, "README lacks the <!-- settings:begin --> ... <!-- settings:end --> block"
    assert match.group(1) == readme_settings(), "README settings are stale: run `make docs`"
    # Every declared variable has its row, and no row names a variable that is not declared.
    rows = re.findall(r"^\| `([A-Z_]+)` \|", match.group(1), re.M)
    assert rows == list(SETTINGS)
