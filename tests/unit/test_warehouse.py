"""Warehouse tests on real DuckDB files and a real Iceberg catalog: idempotence, upserts, publish, crashes, locking."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from pipelines.contract.schema import create_table_sql
from pipelines.contract.tables import EXPORTED_TABLES
from pipelines.contract.tables import INGEST_TABLES as CONTRACT_TABLES
from pipelines.normalize.normalizer import normalize_accounts, normalize_balances, refreshes_table
from pipelines.warehouse import NormalizedBatch, Warehouse, WarehouseBusyError, WarehouseError
from tests.iceberg_tables import catalog_of, iceberg_differences, iceberg_rows, iceberg_table
from tests.warehouse_contract import warehouse_problems

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
DAY1 = 1764000000  # 2025-11-24T16:00:00Z
DAY2 = DAY1 + 86400  # 2025-11-25
BIG = 2**53 + 1


def acct(account_id: str, balance: dict[str, Any] | None, status: str = "active") -> dict[str, Any]:
    return {"id": account_id, "account_holder": {"type": "customer", "customer": "cus_A"}, "status": status,
            "permissions": ["balances"], "livemode": False, "created": DAY1, "balance": balance,
            "balance_refresh": {"status": "succeeded", "last_attempted_at": DAY1, "next_refresh_available_at": None}}


def cash(as_of: int, current: dict[str, Any], available: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"as_of": as_of, "type": "cash", "current": current, "cash": {"available": available}, "credit": None}


def make_batch(accounts: list[dict[str, Any]], at: datetime = T0, run_id: str = "run_1",
               outcome: str = "succeeded") -> NormalizedBatch:
    balances = normalize_balances(accounts, at)
    records = [{"run_id": run_id, "account_id": a["id"], "outcome": outcome,
                "requested_at": DAY2, "completed_at": DAY2 + 5, "status": "succeeded",
                "next_refresh_available_at": None, "error_code": None} for a in accounts if a.get("id")]
    return NormalizedBatch(accounts=normalize_accounts(accounts, at), balances=balances.balances,
                           refreshes=refreshes_table(records), rejected=balances.rejected)


def sample_accounts() -> list[dict[str, Any]]:
    return [
        acct("fca_1", cash(DAY1, {"usd": 6000, "undefined": 5}, {"usd": 5000})),
        acct("fca_2", cash(DAY2, {"usd": BIG, "jpy": 700})),
        acct("fca_3", {"as_of": DAY2, "type": "credit", "current": {"usd": -50000}, "cash": None,
                       "credit": {"used": {"usd": -50000}}}),
        acct("fca_4", None),
        {"id": None, "balance": cash(DAY1, {"usd": 1})},
    ]


def assert_iceberg_equals_duckdb(warehouse_dir: Path) -> None:
    """Every contract table: the same rows in DuckDB and in the current Iceberg snapshot read through the catalog."""
    assert iceberg_differences(warehouse_dir, tuple(CONTRACT_TABLES)) == []


def snapshots_of(warehouse_dir: Path, table: str) -> list[Any]:
    return catalog_of(warehouse_dir).load_table(("fc_balances", table)).snapshots()


def data_files(warehouse_dir: Path, table: str) -> list[str]:
    """The data files of the table's current snapshot, relative to the table's data folder."""
    loaded = catalog_of(warehouse_dir).load_table(("fc_balances", table))
    return sorted(task.file.file_path.split("/data/", 1)[1] for task in loaded.scan().plan_files())


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


# ---------------------------------------------------------------------------------------------- writes


def test_rewriting_the_same_batch_inserts_nothing(warehouse_dir: Path) -> None:
    batch = make_batch(sample_accounts())
    with Warehouse(warehouse_dir) as warehouse:
        first = warehouse.write_batch(batch)
        counts = warehouse.row_counts()
        second = warehouse.write_batch(batch)
        assert warehouse.row_counts() == counts
        counts = {table: counts[table] for table in CONTRACT_TABLES}
    # By hand: 3 accounts with ids and 4 listed (fca_4 has no balance) -> 4 account rows; balances usd (fca_1),
    # usd + jpy (fca_2), usd (fca_3) -> 4 rows; rejects: undefined on fca_1 and the id-less account -> 2.
    assert first == {"fc_accounts": 4, "fc_balances": 4, "fc_balance_refreshes": 4, "fc_rejected_balances": 2}
    assert second == dict.fromkeys(CONTRACT_TABLES, 0)
    assert counts == {"fc_accounts": 4, "fc_balances": 4, "fc_balance_refreshes": 4, "fc_rejected_balances": 2}


def test_balances_stored_exactly(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        with warehouse.connection() as con:
            row = con.execute("SELECT current_minor, \"current\", typeof(\"current\") FROM fc_balances "
                              "WHERE account_id = 'fca_2' AND currency = 'usd'").fetchall()[0]
            credit_row = con.execute("SELECT used_minor, used, available FROM fc_balances "
                                     "WHERE account_id = 'fca_3'").fetchall()[0]
    assert row == (BIG, Decimal("90071992547409.93"), "DECIMAL(38,4)")
    assert credit_row == (-50000, Decimal("-500"), None)


def test_accounts_upsert_keeps_newest_observation(warehouse_dir: Path) -> None:
    older, newer = T0, T0 + timedelta(hours=1)
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(NormalizedBatch(accounts=normalize_accounts([acct("fca_1", None, "active")], newer)))
        late_but_old = warehouse.write_batch(
            NormalizedBatch(accounts=normalize_accounts([acct("fca_1", None, "inactive")], older)))
        with warehouse.connection() as con:
            assert con.execute("SELECT status, observed_at FROM fc_accounts").fetchall() == [("active", newer)]
        newest = warehouse.write_batch(NormalizedBatch(
            accounts=normalize_accounts([acct("fca_1", None, "disconnected")], newer + timedelta(minutes=1))))
        with warehouse.connection() as con:
            assert con.execute("SELECT status FROM fc_accounts").fetchall() == [("disconnected",)]
    assert late_but_old["fc_accounts"] == 0
    assert newest["fc_accounts"] == 1


def test_refresh_rows_are_overwritten_by_a_retried_step(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="timed_out"))
        retried = warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="succeeded"))
        with warehouse.connection() as con:
            assert con.execute("SELECT run_id, account_id, outcome FROM fc_balance_refreshes").fetchall() == [
                ("run_1", "fca_1", "succeeded")]
    assert retried["fc_balance_refreshes"] == 1


def test_rejects_are_deduplicated_null_safely(warehouse_dir: Path) -> None:
    no_id = [{"id": None, "balance": None}, {"id": None, "balance": None}]
    with Warehouse(warehouse_dir) as warehouse:
        first = warehouse.write_batch(NormalizedBatch(rejected=normalize_balances(no_id, T0).rejected))
        again = warehouse.write_batch(
            NormalizedBatch(rejected=normalize_balances(no_id, T0 + timedelta(days=1)).rejected))
        assert warehouse.row_counts()["fc_rejected_balances"] == 1
    assert first["fc_rejected_balances"] == 1  # two identical rows in one batch count once
    assert again["fc_rejected_balances"] == 0  # same (account_id, as_of, currency, reason, payload), later fetch


def test_a_failing_batch_writes_nothing(warehouse_dir: Path) -> None:
    good = make_batch(sample_accounts(), outcome="error")
    with Warehouse(warehouse_dir) as warehouse:
        with warehouse.connection() as con:
            # A constraint only DuckDB knows, so the third statement of the transaction fails after the
            # accounts and balances statements ran.
            con.execute("DROP TABLE fc_balance_refreshes")
            con.execute(create_table_sql("fc_balance_refreshes").replace(
                '"error_code" VARCHAR,', '"error_code" VARCHAR CHECK (outcome <> \'error\'),'))
        with pytest.raises(WarehouseError) as raised:
            warehouse.write_batch(good)
        assert warehouse.row_counts()["fc_accounts"] == 0  # earlier statements were rolled back
        assert warehouse.row_counts()["fc_balances"] == 0
        nulls = good.balances.set_column(good.balances.schema.get_field_index("balance_type"), "balance_type",
                                         pa.nulls(good.balances.num_rows, pa.string()))
        with pytest.raises(WarehouseError, match="does not match the fc_balances schema"):
            warehouse.write_batch(NormalizedBatch(accounts=good.accounts, balances=nulls))
        with pytest.raises(WarehouseError, match="lacks column"):
            warehouse.write_batch(NormalizedBatch(balances=good.balances.drop_columns(["as_of"])))
        assert warehouse.row_counts()["fc_accounts"] == 0
    assert "\n" not in str(raised.value)
    assert "nothing was written" in str(raised.value)


def test_a_reader_can_open_the_file_between_batches(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        reader = duckdb.connect(str(warehouse.duckdb_path), read_only=True)
        assert reader.execute("SELECT count(*) FROM fc_balances").fetchall()[0][0] == 4
        reader.close()
        warehouse.write_batch(make_batch([acct("fca_9", cash(DAY2, {"eur": 1}))]))
        assert warehouse.row_counts()["fc_balances"] == 5


# ---------------------------------------------------------------------------------------------- Iceberg


def test_iceberg_holds_the_same_rows_as_duckdb(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        published = warehouse.publish(run_id="run_a")
        assert published == {"fc_accounts": 4, "fc_balances": 4, "fc_balance_refreshes": 4, "fc_rejected_balances": 2}
        assert warehouse.publish(run_id="run_b") == dict.fromkeys(CONTRACT_TABLES, 0)  # nothing changed
    assert_iceberg_equals_duckdb(warehouse_dir)
    # one snapshot per table for the run that changed it, tagged with its run id; none for the run that did not
    for table in CONTRACT_TABLES:
        assert [s.summary.get("fc.run-id") for s in snapshots_of(warehouse_dir, table)] == ["run_a"], table
    # hidden partitioning from the declarations: the UTC day of as_of, one file per day
    assert [path.split("/")[0] for path in data_files(warehouse_dir, "fc_balances")] == [
        "as_of_day=2025-11-24", "as_of_day=2025-11-25"]
    balances = iceberg_table(warehouse_dir, "fc_balances")
    assert balances.schema.field("current").type == pa.decimal128(38, 4)
    assert balances.schema.field("as_of").type == pa.timestamp("us", tz="UTC")
    assert not balances.schema.field("account_id").nullable
    assert {(r["currency"], r["current"]) for r in balances.to_pylist() if r["as_of"].day == 25} == {
        ("usd", Decimal("90071992547409.93")), ("jpy", Decimal("700")), ("usd", Decimal("-500"))}


def test_contract_check_passes(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish()
    assert warehouse_problems(warehouse_dir) == []


def test_publish_rewrites_only_changed_partitions(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish()
        before = data_files(warehouse_dir, "fc_balances")
        warehouse.write_batch(NormalizedBatch(
            balances=normalize_balances([acct("fca_7", cash(DAY2 + 86400, {"eur": 10, "gbp": 20}))], T0).balances))
        assert warehouse.publish(["fc_balances"], run_id="run_2") == {"fc_balances": 2}  # only the new day
        after = data_files(warehouse_dir, "fc_balances")
        assert set(before) < set(after) and len(after) == 3  # the old days' files are untouched
        latest = snapshots_of(warehouse_dir, "fc_balances")[-1]
        assert latest.summary.get("fc.partition-range") == "2025-11-26..2025-11-26"
        # a deleted day disappears from Iceberg as well, in one overwrite snapshot
        with warehouse.connection() as con:
            con.execute("DELETE FROM fc_balances WHERE as_of < TIMESTAMPTZ '2025-11-25 00:00:00+00'")
        warehouse.publish(["fc_balances"], run_id="run_3")
        assert [p.split("/")[0] for p in data_files(warehouse_dir, "fc_balances")] == [
            "as_of_day=2025-11-25", "as_of_day=2025-11-26"]
        assert len(snapshots_of(warehouse_dir, "fc_balances")) == 3
    assert_iceberg_equals_duckdb(warehouse_dir)


def test_a_changed_partition_is_replaced_not_appended_to(warehouse_dir: Path) -> None:
    """Repeated runs landing rows in the same day leave one file per day partition (no small-file growth)."""
    with Warehouse(warehouse_dir) as warehouse:
        for run in range(4):
            accounts = [acct(f"fca_r{run}", cash(DAY2, {"usd": run + 1}))]
            warehouse.write_batch(NormalizedBatch(balances=normalize_balances(accounts, T0).balances))
            warehouse.publish(["fc_balances"], run_id=f"run_{run}")
    assert data_files(warehouse_dir, "fc_balances") and len(data_files(warehouse_dir, "fc_balances")) == 1
    assert_iceberg_equals_duckdb(warehouse_dir)


def test_marts_publish_from_their_declarations(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        with warehouse.connection() as con:
            con.execute("INSERT INTO fc_latest_balances (account_id, currency, \"current\") "
                        "SELECT account_id, currency, sum(\"current\") FROM fc_balances GROUP BY ALL")
        assert warehouse.publish(["fc_latest_balances"]) == {"fc_latest_balances": 4}
        with pytest.raises(WarehouseError, match="no such exported table"):
            warehouse.publish(["fc_nope"])
        with pytest.raises(WarehouseError, match="no such exported table"):
            warehouse.publish(["fc_balances; DROP TABLE fc_balances"])
        with pytest.raises(WarehouseError, match="no such exported table"):
            warehouse.publish(["fc_deletions"])  # declared, but not exported
    rows = iceberg_rows(warehouse_dir, "fc_latest_balances", 'account_id, currency, "current"')
    assert rows == [("fca_1", "usd", Decimal("60")), ("fca_2", "jpy", Decimal("700")),
                    ("fca_2", "usd", Decimal("90071992547409.93")), ("fca_3", "usd", Decimal("-500"))]


def test_empty_warehouse_has_every_table_in_the_catalog(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir):
        pass
    catalog = catalog_of(warehouse_dir)
    assert sorted(name for _, name in catalog.list_tables("fc_balances")) == sorted(EXPORTED_TABLES)
    assert iceberg_table(warehouse_dir, "fc_accounts").num_rows == 0



# ---------------------------------------------------------------------------------------------- crash recovery


def test_commit_without_publish_is_published_by_the_next_run(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish()
        warehouse.write_batch(make_batch([acct("fca_8", cash(DAY2, {"usd": 3}))], run_id="run_2"))
        # "crash": leave without publishing
    with Warehouse(warehouse_dir) as warehouse:
        assert warehouse.publish(run_id="run_3")["fc_balances"] == 4  # 2025-11-25 again: 3 rows and fca_8
    assert_iceberg_equals_duckdb(warehouse_dir)


@pytest.mark.parametrize("kill_at", ["after_duckdb_commit", "after_iceberg_commit"])
def test_kill_9_around_the_publish_loses_and_duplicates_nothing(warehouse_dir: Path, kill_at: str) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.unit.test_warehouse import make_batch, sample_accounts
        from pipelines.warehouse import Warehouse, publish
        warehouse = Warehouse({str(warehouse_dir)!r})
        warehouse.__enter__()
        warehouse.write_batch(make_batch(sample_accounts()))
        if {kill_at!r} == "after_duckdb_commit":
            os.kill(os.getpid(), signal.SIGKILL)  # after the DuckDB commit, before any Iceberg commit
        def die(table):
            if table == "fc_balances":
                os.kill(os.getpid(), signal.SIGKILL)  # Iceberg committed, DuckDB's record of it not yet
        publish.STEP_HOOK = die
        warehouse.publish(run_id="run_killed")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == -9, result.stderr
    with Warehouse(warehouse_dir, lock_timeout=5) as warehouse:  # the kernel dropped the dead writer's flock
        assert warehouse.row_counts()["fc_balances"] == 4
        warehouse.publish(run_id="run_next")
        assert warehouse.publish(run_id="run_after") == dict.fromkeys(CONTRACT_TABLES, 0)
    assert_iceberg_equals_duckdb(warehouse_dir)


# ---------------------------------------------------------------------------------------------- locking and errors


def test_second_writer_gets_busy_error_naming_the_holder(warehouse_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(REPO)!r})
            from pipelines.warehouse import Warehouse
            with Warehouse({str(warehouse_dir)!r}):
                print("locked", flush=True)
                sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusyError) as raised, Warehouse(warehouse_dir, lock_timeout=0.3):
            pass
        message = str(raised.value)
        assert f"pid {holder.pid}" in message
        assert str(warehouse_dir) in message
        assert "\n" not in message
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    with Warehouse(warehouse_dir, lock_timeout=5):  # free again once the holder is gone
        pass


def test_lock_contention_in_threads(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir), pytest.raises(WarehouseBusyError, match=f"pid {os.getpid()}"):
        Warehouse(warehouse_dir, lock_timeout=0.1).__enter__()


def test_reader_holding_the_file_gives_busy_error_after_timeout(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir, lock_timeout=0.3) as warehouse:
        reader = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import sys, duckdb
                con = duckdb.connect({str(warehouse.duckdb_path)!r}, read_only=True)
                print("open", flush=True)
                sys.stdin.readline()
            """)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
            with pytest.raises(WarehouseBusyError, match="held open by another process"):
                warehouse.write_batch(make_batch(sample_accounts()))
        finally:
            assert reader.stdin is not None
            reader.stdin.close()
            reader.wait(timeout=60)
        assert warehouse.write_batch(make_batch(sample_accounts()))["fc_balances"] == 4


def test_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    target = Path("/sys/fc_balances_warehouse_test")  # sysfs refuses mkdir, even to root
    with pytest.raises(WarehouseError) as raised:
        Warehouse(target).__enter__()
    assert str(target) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_path_that_is_a_file_or_under_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a folder")
    with pytest.raises(WarehouseError, match="is not a folder"):
        Warehouse(a_file).__enter__()
    with pytest.raises(WarehouseError, match="cannot create warehouse folder") as raised:
        Warehouse(a_file / "warehouse").__enter__()
    assert "\n" not in str(raised.value)


def test_corrupt_duckdb_file_is_one_line(warehouse_dir: Path) -> None:
    warehouse_dir.mkdir()
    (warehouse_dir / "fc_balances.duckdb").write_bytes(b"this is not a database" * 1000)
    with pytest.raises(WarehouseError) as raised:
        Warehouse(warehouse_dir).__enter__()
    message = str(raised.value)
    assert str(warehouse_dir / "fc_balances.duckdb") in message
    assert "\n" not in message
    # a failed __enter__ releases the writer lock: taking it without waiting succeeds
    with open(warehouse_dir / ".fc_balances.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(handle, fcntl.LOCK_UN)


def test_use_outside_with_block_is_an_error(warehouse_dir: Path) -> None:
    with pytest.raises(WarehouseError, match="outside its `with` block"):
        Warehouse(warehouse_dir).write_batch(NormalizedBatch())


def test_calls_inside_a_connection_block_use_it_even_after_it_spilled(tmp_path: Path) -> None:
    # A mart step's calls inside its connection's block (counts, the publish) use a cursor of it; a build that
    # spilled to the spill folder must not stop them.
    with Warehouse(tmp_path / "wh", memory_limit="32MB") as wh, wh.connection() as con:
        spilled = con.execute("SELECT count(*) FROM (SELECT range AS n FROM range(6000000) ORDER BY hash(n))")
        assert spilled.fetchone() == (6_000_000,)
        assert wh.row_counts()["fc_balances"] == 0  # through a cursor of `con`
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        assert wh.publish(["fc_balances"])["fc_balances"] == 0
