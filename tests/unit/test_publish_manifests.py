"""A publish's commit stays the same size as history grows: earlier tombstones are not carried forward in the
manifest list, and the transaction copies the metadata (every snapshot in it) once per staged update."""

from __future__ import annotations

from pathlib import Path

import pyiceberg.table as pyiceberg_table
import pytest

from pipelines.warehouse import Warehouse
from pipelines.warehouse.overwrite import PublishTransaction
from tests.iceberg_tables import catalog_of, iceberg_differences
from tests.unit.test_warehouse import DAY2, acct, cash, make_batch, sample_accounts

PUBLISHES = 8


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


def current_manifests(warehouse_dir: Path, table: str) -> list:
    loaded = catalog_of(warehouse_dir).load_table(("fc_balances", table))
    snapshot = loaded.current_snapshot()
    assert snapshot is not None
    return snapshot.manifests(loaded.io)


def publish_one_more_account_each_time(warehouse_dir: Path) -> list[dict[str, int]]:
    """PUBLISHES publishes, each after one more account with a balance on the same day: fc_accounts (unpartitioned)
    is overwritten whole each time, fc_balances's day partition replaced each time."""
    published = []
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        published.append(warehouse.publish(["fc_accounts", "fc_balances"], run_id="run_0"))
        for n in range(1, PUBLISHES):
            warehouse.write_batch(make_batch([acct(f"fca_new{n}", cash(DAY2, {"usd": n}))], run_id=f"run_{n}"))
            published.append(warehouse.publish(["fc_accounts", "fc_balances"], run_id=f"run_{n}"))
    return published


@pytest.mark.parametrize("table", ["fc_accounts", "fc_balances"])
def test_the_manifest_list_stays_bounded(warehouse_dir: Path, table: str) -> None:
    published = publish_one_more_account_each_time(warehouse_dir)
    assert all(rows[table] > 0 for rows in published)  # every publish replaced something
    loaded = catalog_of(warehouse_dir).load_table(("fc_balances", table))
    assert len(loaded.snapshots()) == PUBLISHES
    manifests = current_manifests(warehouse_dir, table)
    # This snapshot's added files and its own tombstones, plus (fc_balances) the untouched day's manifest: never
    # one more per earlier publish (pyiceberg's overwrite alone kept PUBLISHES + 1 here).
    assert len(manifests) <= 3, [(m.added_files_count, m.existing_files_count, m.deleted_files_count)
                                 for m in manifests]
    assert all(m.has_added_files() or m.has_existing_files() or m.added_snapshot_id == loaded.current_snapshot().
               snapshot_id for m in manifests)
    assert iceberg_differences(warehouse_dir, (table,)) == []


def test_earlier_snapshots_still_read_as_they_were(warehouse_dir: Path) -> None:
    """Time travel: each snapshot keeps its own manifest list, so the first still holds the first publish's rows."""
    publish_one_more_account_each_time(warehouse_dir)
    loaded = catalog_of(warehouse_dir).load_table(("fc_balances", "fc_accounts"))
    counts = [loaded.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows for s in loaded.snapshots()]
    first = counts[0]
    assert counts == [first + n for n in range(PUBLISHES)]


def test_a_transaction_computes_its_metadata_once_per_staged_update(warehouse_dir: Path) -> None:
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish(["fc_accounts"], run_id="run_0")
    table = catalog_of(warehouse_dir).load_table(("fc_balances", "fc_accounts"))
    transaction = PublishTransaction(table)
    first = transaction.table_metadata
    assert transaction.table_metadata is first  # no new deep copy while nothing is staged
    transaction.set_properties({"fc.test": "staged"})
    staged = transaction.table_metadata
    assert staged is not first and staged.properties["fc.test"] == "staged" and "fc.test" not in first.properties
    transaction.commit_transaction()
    assert catalog_of(warehouse_dir).load_table(("fc_balances", "fc_accounts")).properties["fc.test"] == "staged"


def test_a_publish_copies_the_metadata_a_few_times_not_once_per_read(warehouse_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each copy holds every snapshot, so copies per commit times snapshots is what grew with history."""
    copies: list[int] = []
    real = pyiceberg_table.update_table_metadata

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        copies.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pyiceberg_table, "update_table_metadata", counted)
    with Warehouse(warehouse_dir) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        warehouse.publish(["fc_accounts"], run_id="run_0")
        warehouse.write_batch(make_batch([acct("fca_new", cash(DAY2, {"usd": 1}))], run_id="run_1"))
        copies.clear()
        assert warehouse.publish(["fc_accounts"], run_id="run_1") == {"fc_accounts": 5}
    assert 1 <= len(copies) <= 4, len(copies)  # pyiceberg's own transaction: 20 here
