"""The numpy features build's plumbing: bucket streams cut right, slices produced ahead in a thread, rows inserted
in whole row groups, and DuckDB's memory limit shared and restored (the statistics themselves are held to the
brute-force reference in test_reference.py)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest

from pipelines.contract.migrations import migrate
from pipelines.marts import feature_windows, specs
from pipelines.marts.build import HistorySettings, build_marts
from pipelines.warehouse import base
from pipelines.warehouse.base import memory_limit_lowered


def stream(buckets_of_rows: list[int], batch_rows: int) -> pa.RecordBatchReader:
    table = pa.table({"bucket": pa.array(buckets_of_rows, pa.int32()), "row": pa.array(range(len(buckets_of_rows)))})
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 100])
def test_every_bucket_comes_once_in_order_with_exactly_its_rows(batch_rows: int) -> None:
    # Buckets 0, 3 and 5 have no rows; 2 spans several batches; the last one (6 of 7) is empty too.
    ids = [1, 1, 2, 2, 2, 2, 2, 4, 6]
    got = [(bucket, rows.column("row").to_pylist(), rows.column("bucket").to_pylist())
           for bucket, rows in feature_windows._buckets_of(stream(ids, batch_rows), 8)]
    assert [bucket for bucket, _, _ in got] == list(range(8))
    for bucket, rows, row_buckets in got:
        assert rows == [i for i, b in enumerate(ids) if b == bucket]
        assert set(row_buckets) <= {bucket}


def test_no_rows_at_all_still_gives_every_bucket() -> None:
    got = list(feature_windows._buckets_of(stream([], 4), 3))
    assert [(bucket, rows.num_rows) for bucket, rows in got] == [(0, 0), (1, 0), (2, 0)]


def test_previous_rows_are_split_by_bucket() -> None:
    table = pa.table({"bucket": pa.array([0, 0, 2], pa.int32()), "account_id": ["a", "b", "c"]})
    parts = feature_windows._split_by_bucket(table, 4)
    assert [part.column("account_id").to_pylist() for part in parts] == [["a", "b"], [], ["c"], []]
    assert all("bucket" not in part.column_names for part in parts)


def limit_mib(con: duckdb.DuckDBPyConnection) -> float:
    value, unit = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]).split()
    assert unit == "MiB"
    return float(value)


def test_duckdb_gives_up_the_numpy_share_and_what_python_holds_and_gets_it_back() -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    before = limit_mib(con)  # 953.6: DuckDB shows its limit cut to 0.1 MiB
    outside = base.resident_outside_duckdb(con) / 2**20
    assert outside > 20  # this test process: the interpreter, pytest, numpy, pyarrow, duckdb
    with memory_limit_lowered(con, 256 * 2**20):
        lowered = limit_mib(con)
    # What Python held on entry was measured again inside: allow for a few MiB of drift between the two reads.
    floor = max(before / 4, base.MEMORY_FLOOR / 2**20)
    assert lowered == pytest.approx(max(before - 256 - outside, floor), abs=8)
    restored = limit_mib(con)
    assert restored == pytest.approx(before, abs=0.11)
    for _ in range(3):  # a build per batch: the 0.1 MiB of rounding does not add up
        with pytest.raises(RuntimeError), memory_limit_lowered(con, 2**40):
            assert limit_mib(con) == pytest.approx(floor, abs=0.11)  # never below the floor
            raise RuntimeError("a failed build still restores the limit")
        assert limit_mib(con) == restored


def test_a_small_limit_is_lowered_no_further_than_the_floor() -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = ?", [f"{2 * base.MEMORY_FLOOR}B"])  # a quarter of it is below the floor
    with memory_limit_lowered(con, 2**40):
        assert limit_mib(con) == pytest.approx(base.MEMORY_FLOOR / 2**20, abs=0.11)
    con.execute("SET memory_limit = ?", [f"{base.MEMORY_FLOOR * 4 // 5}B"])  # below the floor: left as configured
    before = limit_mib(con)
    with memory_limit_lowered(con, 2**40):
        assert limit_mib(con) == pytest.approx(before, abs=0.11)


def test_items_produced_ahead_come_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def items() -> Iterator[int]:
        for i in range(50):
            producers.add(threading.current_thread().name)
            yield i

    assert list(feature_windows.ahead(items(), depth=2)) == list(range(50))  # type: ignore[arg-type]
    assert producers and threading.current_thread().name not in producers


def test_a_failure_while_producing_reaches_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("bucket 7 broke")

    got: list[int] = []
    with pytest.raises(ValueError, match="bucket 7 broke"):
        for item in feature_windows.ahead(items()):  # type: ignore[arg-type]
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_stops_the_producer() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    items = feature_windows.ahead(endless(), depth=1)  # type: ignore[arg-type]
    assert next(items) == 0
    items.close()  # what a failed insert does to the generator
    assert threading.active_count() == before
    assert len(produced) <= 4  # the one consumed, one queued, one waiting to be queued: nothing ran on


def test_rows_go_in_as_whole_row_groups_until_the_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feature_windows, "INSERT_BATCH_ROWS", 10)
    monkeypatch.setattr(feature_windows, "INSERT_ROW_GROUPS", 2)
    con = duckdb.connect()
    con.execute("CREATE TABLE fc_underwriting_features (n INTEGER)")
    writer = feature_windows._RowGroupWriter(con)
    stored = []
    for size in (7, 9, 13, 25, 1):
        writer.add(pa.table({"n": pa.array(range(size), pa.int32())}))
        stored.append(con.execute("SELECT count(*) FROM fc_underwriting_features").fetchall()[0][0])
    # 7 and 16 wait for two whole groups; 29 -> 20 in, 9 carried; 34 -> 30 in, 4 carried; 5 wait.
    assert stored == [0, 0, 20, 50, 50]
    writer.flush()
    assert con.execute("SELECT count(*) FROM fc_underwriting_features").fetchall()[0][0] == 55


def test_an_amount_at_int64s_minimum_takes_the_exact_path_instead_of_overflowing() -> None:
    # abs() of int64's minimum overflows in Arrow: the range build must hand such a bucket to the SQL path (None),
    # as it does any amount past float64's exact integers, not fail the mart (found when a run crossed midnight).
    from datetime import UTC, date, datetime

    import pyarrow as pa

    from pipelines.marts.feature_windows import _bucket_rows

    params = {"first": date(2026, 12, 6), "last": date(2026, 12, 7), "built_at": datetime(2026, 12, 7, tzinfo=UTC)}
    for extreme in (-(2**63), 2**63 - 1):
        series = pa.table({"current_minor": pa.array([1, extreme, None], pa.int64())})
        assert _bucket_rows(series, pa.table({}), params) is None


def test_a_features_build_runs_with_duckdb_giving_up_the_numpy_share(tmp_path, monkeypatch) -> None:
    """The spec's python_memory reaches the range build: DuckDB's limit is lowered while it runs, then restored."""
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, str(path))
    con.execute("SET memory_limit = '1GB'")
    configured = limit_mib(con)
    con.execute("INSERT INTO fc_balances VALUES ('fca_1', 'cus_1', 'cash', 'usd', ?, 500, 500, NULL, 5, 5, NULL, ?)",
                [datetime(2025, 1, 2, 12, tzinfo=UTC), datetime(2025, 1, 2, 13, tzinfo=UTC)])
    monkeypatch.setattr(base, "resident_outside_duckdb", lambda _con: 0)  # the share alone, deterministic
    seen: list[float] = []
    spec = specs.MART_SPECS["fc_underwriting_features"]

    def engine(con: duckdb.DuckDBPyConnection, params: dict[str, object], buckets: int) -> list[int]:
        seen.append(limit_mib(con))
        return feature_windows.build_range(con, params, buckets)

    monkeypatch.setitem(specs.MART_SPECS, spec.name, dataclasses.replace(spec, range_engine=engine))
    counts = build_marts(con, datetime(2025, 1, 10, tzinfo=UTC), HistorySettings(history_start=date(2025, 1, 1)))
    assert counts["fc_underwriting_features"] > 0
    assert seen and seen[0] == pytest.approx(configured - feature_windows.NUMPY_MEMORY / 2**20, abs=0.11)
    assert limit_mib(con) == pytest.approx(configured, abs=0.11)
