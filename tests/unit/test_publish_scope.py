"""A recorded table's publish fingerprints only the partitions whose counts moved or an in-place write marked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import pipelines.warehouse.publish as publish
from pipelines.normalize.normalizer import normalize_balances
from pipelines.warehouse import NormalizedBatch, Warehouse, WarehouseError
from pipelines.warehouse.partitions import PartitionState, current_partitions, partition_counts
from tests.iceberg_tables import iceberg_differences, iceberg_rows
from tests.unit.test_warehouse import DAY1, DAY2, T0, acct, cash, make_batch, sample_accounts

DAY3 = DAY2 + 86400  # 2025-11-26


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture
def fingerprinted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    """The partitions each scoped publish fingerprints (the real function runs)."""
    asked: list[tuple[str, set[str]]] = []
    real = publish.partitions_of

    def spy(con, table: str, keys: Iterable[str]) -> dict[str, PartitionState]:  # type: ignore[no-untyped-def]
        keys = set(keys)
        asked.append((table, keys))
        return real(con, table, keys)

    monkeypatch.setattr(publish, "partitions_of", spy)
    return asked


def pending(warehouse: Warehouse) -> list[tuple[str, str]]:
    with warehouse.connection() as con:
        return con.execute("SELECT table_name, partition_key FROM _fc_iceberg_pending ORDER BY ALL").fetchall()


def test_a_new_day_is_the_only_partition_read(warehouse_dir: Path, fingerprinted: list) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish(run_id="run_a")  # no record yet: every partition
        assert fingerprinted == []
        warehouse.write_batch(NormalizedBatch(
            balances=normalize_balances([acct("fca_7", cash(DAY3, {"eur": 10}))], T0).balances))
        assert warehouse.publish(["fc_balances"], run_id="run_b") == {"fc_balances": 1}
        assert fingerprinted == [("fc_balances", {"2025-11-26"})]
        fingerprinted.clear()
        assert warehouse.publish(["fc_balances"], run_id="run_c") == {"fc_balances": 0}
        assert fingerprinted == [("fc_balances", set())]  # nothing moved: nothing read past the counts
    assert iceberg_differences(warehouse_dir) == []


def test_an_upsert_in_place_is_republished(warehouse_dir: Path, fingerprinted: list) -> None:
    """A retried step rewrites its refresh rows: the counts stay, the mark makes the publish read them."""
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="timed_out"))
        warehouse.publish(run_id="run_1")
        assert pending(warehouse) == []
        warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="succeeded"))
        assert pending(warehouse) == [("fc_balance_refreshes", "run_1")]
        assert warehouse.publish(run_id="run_1")["fc_balance_refreshes"] == 1
        assert ("fc_balance_refreshes", {"run_1"}) in fingerprinted
        assert pending(warehouse) == []
    assert iceberg_rows(warehouse_dir, "fc_balance_refreshes", "run_id, outcome") == [("run_1", "succeeded")]


def test_a_mark_outlives_a_crash_before_the_record(warehouse_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="timed_out"))
        warehouse.publish(run_id="run_1")
        warehouse.write_batch(make_batch([acct("fca_1", None)], outcome="succeeded"))

        def crash(table: str) -> None:
            if table == "fc_balance_refreshes":
                raise RuntimeError("killed between the Iceberg commit and the record")

        monkeypatch.setattr(publish, "STEP_HOOK", crash)
        with pytest.raises(WarehouseError, match="killed between"):
            warehouse.publish(["fc_balance_refreshes"], run_id="run_1")
        monkeypatch.setattr(publish, "STEP_HOOK", None)
        assert pending(warehouse) == [("fc_balance_refreshes", "run_1")]
        assert warehouse.publish(["fc_balance_refreshes"], run_id="run_2") == {"fc_balance_refreshes": 1}
        assert pending(warehouse) == []
    assert iceberg_differences(warehouse_dir) == []


def test_rows_another_path_wrote_or_deleted_are_published(warehouse_dir: Path) -> None:
    """SQL outside write_batch leaves no mark, but inserts and deletes move a count."""
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish(run_id="run_a")
        with warehouse.connection() as con:
            con.execute("INSERT INTO fc_balances SELECT * REPLACE ('fca_9' AS account_id) FROM fc_balances "
                        "WHERE account_id = 'fca_1'")
            con.execute("DELETE FROM fc_balances WHERE account_id = 'fca_3'")
        published = warehouse.publish(["fc_balances"], run_id="run_b")
        assert published == {"fc_balances": 4}  # day 1: two rows now; day 2: fca_3 gone, fca_2's two rows stay
        with warehouse.connection() as con:
            con.execute("DELETE FROM fc_balances WHERE as_of < TIMESTAMPTZ '2025-11-25 00:00:00+00'")
        warehouse.publish(["fc_balances"], run_id="run_c")  # a whole day gone
    assert iceberg_differences(warehouse_dir) == []


def test_counts_by_day_agree_with_the_fingerprints_around_midnight(warehouse_dir: Path) -> None:
    """The counts' day comes from epoch microseconds, floored: the same day as a cast in UTC, before 1970 too."""
    stamps = [DAY1, DAY2 - DAY1 % 86400 - 1, DAY2 - DAY1 % 86400, -1, -86400, -86401, 0, 1]
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        with warehouse.connection() as con:
            for n, stamp in enumerate(stamps):  # past what the normalizer accepts: SQL straight into the table
                con.execute("INSERT INTO fc_balances SELECT * REPLACE ($id AS account_id, to_timestamp($at) AS as_of) "
                            "FROM fc_balances WHERE account_id = 'fca_1'", {"id": f"fca_t{n}", "at": stamp})
            counts = partition_counts(con, "fc_balances")
            stats = current_partitions(con, "fc_balances")
    assert counts == {key: state.row_count for key, state in stats.items()}
    assert counts["1969-12-30"] == 1 and counts["1969-12-31"] == 2 and counts["1970-01-01"] == 2
    assert datetime.fromtimestamp(-86401, UTC).date().isoformat() == "1969-12-30"
