"""Every exported table's Iceberg schema and partition spec come from its declaration, so a table declared later
(another issue's new table or column) is published with no code of the publish's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest
from pyiceberg.transforms import DayTransform, IdentityTransform

from pipelines.contract import migrations
from pipelines.contract.partition import Partition
from pipelines.contract.schema import create_table_sql
from pipelines.contract.tables import EXPORTED_TABLES, TABLES, Column, Table
from pipelines.warehouse import Warehouse
from pipelines.warehouse.catalog import iceberg_schema, partition_spec
from tests.iceberg_tables import catalog_of, duckdb_rows, iceberg_rows


@pytest.mark.parametrize("name", EXPORTED_TABLES)
def test_schema_and_spec_follow_the_declaration(name: str) -> None:
    declared = TABLES[name]
    schema = iceberg_schema(name)
    assert [field.name for field in schema.fields] == list(declared.column_names)
    for column in declared.columns:
        assert schema.find_field(column.name).required == (not column.nullable), column.name
    spec = partition_spec(name, schema)
    if declared.partition is None:
        assert spec.is_unpartitioned()
    else:
        (field,) = spec.fields
        assert schema.find_field(field.source_id).name == declared.partition.column
        kind = DayTransform if declared.partition.transform == "day" else IdentityTransform
        assert isinstance(field.transform, kind)


def test_a_table_declared_later_is_published_from_its_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = Table(
        name="fc_new_decisions", description="a table another issue adds (test only)", group="funds",
        key=("decision_id",), partition=Partition("decided_at", "day"),
        columns=(Column("decision_id", "VARCHAR", "id", nullable=False),
                 Column("decided_at", "TIMESTAMP WITH TIME ZONE", "when", nullable=False),
                 Column("amount", "DECIMAL(38,4)", "how much"), Column("tags", "VARCHAR[]", "labels")),
    )
    monkeypatch.setitem(TABLES, new.name, new)
    shipped = migrations.migrations()
    added = migrations.Migration(shipped[-1].version + 1, "new_decisions", create_table_sql(new.name))
    monkeypatch.setattr(migrations, "migrations", lambda: (*shipped, added))
    monkeypatch.setattr("pipelines.warehouse.store.EXPORTED_TABLES", (*EXPORTED_TABLES, new.name))
    folder = tmp_path / "wh"
    with Warehouse(folder) as warehouse, warehouse.connection() as con:
        con.execute("INSERT INTO fc_new_decisions VALUES ('d1', TIMESTAMPTZ '2026-11-30 12:00:00+00', 1.5, ['a']),"
                    " ('d2', TIMESTAMPTZ '2026-12-01 08:00:00+00', NULL, NULL)")
    with Warehouse(folder) as warehouse:
        assert warehouse.publish([new.name], run_id="run_new") == {new.name: 2}
    table = catalog_of(folder).load_table(("fc_balances", new.name))
    assert [f.name for f in table.spec().fields] == ["decided_at_day"]
    assert iceberg_rows(folder, new.name) == duckdb_rows(folder, new.name)
    with duckdb.connect(str(folder / "fc_balances.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM _fc_iceberg_partitions WHERE table_name = ?",
                           [new.name]).fetchone() == (2,)  # two day partitions recorded


def test_a_declared_column_added_later_evolves_the_published_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "wh"
    with Warehouse(folder) as warehouse, warehouse.connection() as con:
        con.execute("INSERT INTO fc_accounts (account_id, observed_at) VALUES ('fca_1', now())")
    with Warehouse(folder) as warehouse:
        warehouse.publish(["fc_accounts"])
    accounts = TABLES["fc_accounts"]
    monkeypatch.setitem(TABLES, "fc_accounts", dataclasses.replace(
        accounts, columns=(*accounts.columns, Column("health", "VARCHAR", "a later issue's column"))))
    shipped = migrations.migrations()
    added = migrations.Migration(shipped[-1].version + 1, "health", "ALTER TABLE fc_accounts ADD COLUMN health VARCHAR;"
                                 " UPDATE fc_accounts SET health = 'ok';")
    monkeypatch.setattr(migrations, "migrations", lambda: (*shipped, added))
    with Warehouse(folder) as warehouse:
        assert warehouse.publish(["fc_accounts"]) == {"fc_accounts": 1}
    published = catalog_of(folder).load_table(("fc_balances", "fc_accounts"))
    assert published.schema().column_names[-1] == "health"
    assert iceberg_rows(folder, "fc_accounts", "account_id, health") == [("fca_1", "ok")]
