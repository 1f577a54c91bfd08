"""Upgrading real warehouses: 0.1.0 and 0.2.0 ones keep every row and publish it to Iceberg, a newer one is refused
untouched, kill -9 at any point is finished by the next open."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import migrations
from pipelines.contract.migrations import current_version, warehouse_version
from pipelines.contract.tables import TABLES
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse, WarehouseError
from tests.iceberg_tables import catalog_of, iceberg_differences
from tests.schema.helpers import add_column_release, kept_rows, table_rows, unpack_0_1_0, unpack_0_2_0
from tests.warehouse_contract import warehouse_problems

REPO = Path(__file__).resolve().parents[2]
FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))


def _version(warehouse: Path) -> int | None:
    with duckdb.connect(str(warehouse / DUCKDB_FILE_NAME), read_only=True) as con:
        return warehouse_version(con)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_0_1_0_warehouse_upgrades_and_keeps_every_row(tmp_path: Path) -> None:
    warehouse = unpack_0_1_0(tmp_path / "wh")
    assert _version(warehouse) == 1
    before = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert before["fc_balances"] and before["fc_events"]  # a real history and an applied event

    checked = subprocess.run([FC_BALANCES, "check", "--warehouse", str(warehouse)], capture_output=True, text=True)
    assert checked.returncode == 1  # readers never migrate; they say what they found
    assert "schema version 1, this fc-balances expects" in checked.stdout + checked.stderr

    with Warehouse(warehouse) as opened:
        assert opened.row_counts()["fc_balances"] == len(before["fc_balances"])
    after = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert _version(warehouse) == current_version()
    for table, rows in before.items():
        if TABLES[table].group == "marts":  # derived data: migration 0003 drops them for the next marts run
            assert after[table] == [], table
            continue
        width = len(rows[0]) if rows else 0  # migrations append columns: the old ones keep every value
        assert [row[:width] for row in after[table]] == rows, table
    assert warehouse_problems(warehouse) == []
    assert iceberg_differences(warehouse) == []
    assert not (warehouse / "parquet").exists()  # the mirror went after every row was committed to Iceberg


def test_a_0_2_0_warehouse_publishes_every_row_to_iceberg_then_drops_parquet(tmp_path: Path) -> None:
    warehouse = unpack_0_2_0(tmp_path / "wh")
    assert _version(warehouse) == 5 and (warehouse / "parquet" / "fc_balances").is_dir()
    before = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert before["fc_balances"] and before["fc_daily_balances"] and before["fc_underwriting_features"]
    with Warehouse(warehouse):
        pass
    assert _version(warehouse) == current_version()
    after = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert kept_rows(before, after) == []  # every 0.2.0 row kept on its columns (features: within the bound)
    assert iceberg_differences(warehouse) == []  # every exported table, marts too, row for row
    assert not (warehouse / "parquet").exists()
    catalog = catalog_of(warehouse)
    (snapshot,) = catalog.load_table(("fc_balances", "fc_balances")).snapshots()
    assert snapshot.summary.get("fc.run-id") == "upgrade-from-parquet"
    assert warehouse_problems(warehouse) == []
    with Warehouse(warehouse) as reopened:  # nothing left to publish
        assert set(reopened.publish(run_id="after").values()) == {0}


@pytest.mark.parametrize("kill_in", ["migration", "publish", "parquet_removal"])
def test_kill_9_during_the_0_2_0_upgrade_is_finished_by_the_next_open(tmp_path: Path, kill_in: str) -> None:
    warehouse = unpack_0_2_0(tmp_path / "wh")
    before = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert _open(warehouse, kill_in, add_column=False) == -9
    assert (warehouse / "parquet").is_dir()  # never removed before the Iceberg commits
    assert _open(warehouse, None, add_column=False) == 0
    assert kept_rows(before, table_rows(warehouse / DUCKDB_FILE_NAME)) == []
    assert iceberg_differences(warehouse) == []  # nothing lost, nothing twice
    assert not (warehouse / "parquet").exists()


def test_a_warehouse_newer_than_the_code_is_refused_untouched(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with Warehouse(warehouse):
        pass
    with duckdb.connect(str(warehouse / DUCKDB_FILE_NAME)) as con:
        con.execute("INSERT INTO fc_schema_migrations VALUES (99, 'from_the_future', now())")
    before = _snapshot(warehouse)
    with pytest.raises(WarehouseError) as raised, Warehouse(warehouse):
        pytest.fail("opened a warehouse from the future")
    message = str(raised.value)
    assert "\n" not in message
    assert "schema version 99" in message and f"schema version {current_version()}" in message
    assert _snapshot(warehouse) == before

    run = subprocess.run([FC_BALANCES, "run", "--warehouse", str(warehouse), "--demo-customers", "2", "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "schema version 99" in run.stderr and "Traceback" not in run.stderr
    assert _snapshot(warehouse) == before


_OPEN = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from pipelines.contract import migrations
from pipelines.warehouse import Warehouse, publish, store
from tests.schema.helpers import add_column_release
if {add_column}:
    add_column_release()
if {kill_in} == "transaction":
    real = migrations._record
    def record_then_die(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the migration ran, its COMMIT never happens
    migrations._record = record_then_die
if {kill_in} == "migration":
    real_migrate = store.migrate
    def migrate_then_die(*args, **kwargs):
        result = real_migrate(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the migration committed, nothing published yet
    store.migrate = migrate_then_die
if {kill_in} == "publish":
    def die_after_commit(table):
        if table == "fc_balances":
            os.kill(os.getpid(), signal.SIGKILL)  # fc_balances committed to Iceberg, not yet recorded in DuckDB
    publish.STEP_HOOK = die_after_commit
if {kill_in} == "parquet_removal":
    def die(path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # every table published, parquet/ not yet removed
    store.shutil.rmtree = die
with Warehouse({warehouse!r}):
    pass
"""


def _open(warehouse: Path, kill_in: str | None, add_column: bool) -> int:
    script = textwrap.dedent(_OPEN).format(repo=str(REPO), warehouse=str(warehouse), kill_in=repr(kill_in),
                                           add_column=add_column)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120).returncode


def test_kill_9_inside_the_migration_transaction_is_started_over(tmp_path: Path) -> None:
    warehouse = unpack_0_1_0(tmp_path / "wh")
    before = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert _open(warehouse, "transaction", add_column=False) == -9
    assert _version(warehouse) == 1  # nothing of the half-done migration survived
    assert _open(warehouse, None, add_column=False) == 0
    assert _version(warehouse) == current_version()
    after = table_rows(warehouse / DUCKDB_FILE_NAME)
    for table, rows in before.items():
        if TABLES[table].group == "marts":  # derived data, rebuilt by the next marts run
            continue
        width = len(rows[0]) if rows else 0  # migrations append columns: the old ones keep every value
        assert [row[:width] for row in after[table]] == rows, table
    assert warehouse_problems(warehouse) == []


def test_a_new_column_evolves_the_iceberg_schema_even_after_a_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh"
    unpack_0_1_0(warehouse)
    assert _open(warehouse, None, add_column=False) == 0  # today's version, published to Iceberg
    accounts = catalog_of(warehouse).load_table(("fc_balances", "fc_accounts"))
    assert "risk_tier" not in accounts.schema().column_names

    # The next release adds a column; its open dies after the migration committed, before any publish.
    assert _open(warehouse, "migration", add_column=True) == -9
    assert "risk_tier" not in catalog_of(warehouse).load_table(("fc_balances", "fc_accounts")).schema().column_names

    assert _open(warehouse, None, add_column=True) == 0  # the next open evolves the schema (update_schema)
    accounts = catalog_of(warehouse).load_table(("fc_balances", "fc_accounts"))
    assert "risk_tier" in accounts.schema().column_names
    assert accounts.scan().to_arrow().num_rows == len(table_rows(warehouse / DUCKDB_FILE_NAME)["fc_accounts"])
    # Checked as the next release would check it (the patch is undone after the test).
    monkeypatch.setattr(migrations, "migrations", migrations.migrations)
    monkeypatch.setitem(TABLES, "fc_accounts", TABLES["fc_accounts"])
    add_column_release()
    assert warehouse_problems(warehouse) == []
    assert iceberg_differences(warehouse, ("fc_accounts",)) == []
