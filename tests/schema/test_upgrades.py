"""Upgrading real warehouses: a 0.1.0 one keeps every row, a newer one is refused untouched, kill -9 is healed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.contract import migrations
from pipelines.contract.migrations import current_version, warehouse_version
from pipelines.contract.tables import TABLES
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse, WarehouseError
from tests.schema.helpers import add_column_release, table_rows, unpack_0_1_0
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
    assert not (warehouse / ".parquet_export_pending").exists()


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
from pipelines.warehouse import Warehouse
from tests.schema.helpers import add_column_release
if {add_column}:
    add_column_release()
if {kill_in} == "transaction":
    real = migrations._record
    def record_then_die(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the migration ran, its COMMIT never happens
    migrations._record = record_then_die
if {kill_in} == "parquet":
    def die(self):
        os.kill(os.getpid(), signal.SIGKILL)  # committed, Parquet not yet rewritten
    Warehouse._repair_parquet = die
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


def test_kill_9_between_the_commit_and_the_parquet_rewrite_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh"
    unpack_0_1_0(warehouse)
    assert _open(warehouse, None, add_column=False) == 0  # today's version, with Parquet
    accounts = warehouse / "parquet" / "fc_accounts" / "fc_accounts.parquet"
    assert "risk_tier" not in pq.read_schema(accounts).names

    # The next release adds a column; its open dies after the migration committed.
    assert _open(warehouse, "parquet", add_column=True) == -9
    assert (warehouse / ".parquet_export_pending").exists()
    assert "risk_tier" not in pq.read_schema(accounts).names

    assert _open(warehouse, None, add_column=True) == 0  # the next open finishes the rewrite
    assert "risk_tier" in pq.read_schema(accounts).names
    assert pq.read_metadata(accounts).num_rows == len(table_rows(warehouse / DUCKDB_FILE_NAME)["fc_accounts"])
    assert not (warehouse / ".parquet_export_pending").exists()
    # Checked as the next release would check it (the patch is undone after the test).
    monkeypatch.setattr(migrations, "migrations", migrations.migrations)
    monkeypatch.setitem(TABLES, "fc_accounts", TABLES["fc_accounts"])
    add_column_release()
    assert warehouse_problems(warehouse) == []
