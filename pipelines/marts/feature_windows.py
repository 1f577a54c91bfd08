"""fc_underwriting_features for a range of window ends, one hash bucket of keys at a time, computed with numpy.

The fast path of the two implementations of the feature rules: sql/marts/fc_underwriting_features.sql (one window
end) is the reference the tests hold it to, and builds the buckets holding an amount too large for exact float64
arithmetic, a day at a time. The windows come from pipelines.contract.tables.FEATURE_WINDOWS. DuckDB's window
operator spent most of a full rebuild on 18 windowed aggregates; here each key's days are one row of a matrix,
counts and sums come from running sums, and min, max and both percentiles from one sorted copy of each window:
several times faster on the same two cores. Knows nothing of Dagster.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from queue import Empty, Full, Queue

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from pipelines.contract.values import FEATURE_WINDOWS
from pipelines.sql import load_sql

WINDOWS: tuple[int, ...] = FEATURE_WINDOWS
LOOKBACK = max(WINDOWS) - 1  # the days before $first the longest window of $first reads
# float64 holds every integer below 2**53 exactly: min, max and percentiles stay exact; larger amounts take SQL.
EXACT_LIMIT = 2**53
SLICE_ENDS = 31  # window ends per inserted slice: bounds the output held at once
KEY_CHUNK = 256  # keys per sorted-window block: a block of 90-day windows stays in cache
QUANTILES = (0.1, 0.9)
INSERT_BATCH_ROWS = 122_880  # one DuckDB row group
INSERT_ROW_GROUPS = 4  # row groups per INSERT statement (the remainder waits for the next slice)
READ_ROWS = 262_144  # daily rows per batch read from the sorted stream
# What the numpy side holds at most: one bucket's matrices and payload (500,000 daily rows), the slices in flight
# and the rows waiting for whole row groups. DuckDB's limit is lowered by as much meanwhile (the mart's spec): the
# sorted stream of daily rows spills instead (its reading time did not change at a 256 MB limit, as measured).
NUMPY_MEMORY = 384 * 2**20
_US_PER_HOUR = 3600e6
TABLE = "fc_underwriting_features"


@dataclass
class _Bucket:
    """One bucket's inputs as matrices: a row per key, a column per day of $first - 89 .. $last."""

    accounts: pa.Array
    currencies: pa.Array
    values: np.ndarray  # float64, NaN where the day has no current_minor
    sums: np.ndarray  # int64 running sums of current_minor, a leading 0 column
    counts: dict[str, np.ndarray]  # running counts (value, observed, negative), a leading 0 column
    runs: np.ndarray  # int32: consecutive negative days ending on each day
    latest: np.ndarray  # int32: payload row of the newest balance as of each day (the balance before the range: -1)
    payload: pa.Table  # series rows, then one row per key for the balance before the range
    cash: np.ndarray  # bool per payload row: balance_type is cash
    as_of_us: np.ndarray  # int64 per payload row: as_of in microseconds since the epoch


def build_range(con: duckdb.DuckDBPyConnection, params: dict[str, object], buckets: int) -> list[int]:
    """Insert the features of the ends $first..$last, bucket after bucket, in the caller's transaction; the buckets
    left for the one-day SQL (an amount too large for exact float64 arithmetic)."""
    previous = con.sql(load_sql("marts/features_previous"), params={
        k: params[k] for k in ("first", "seed", "seed_end")} | {"window_days": WINDOWS[0], "buckets": buckets}
    ).to_arrow_table()
    previous_of = _split_by_bucket(previous, buckets)
    columns = con.table(TABLE).columns  # as the table stores them (insert_into is by position)
    left: list[int] = []
    # The daily rows stream from a cursor of their own (the inserts go through `con`), sorted by bucket: one scan.
    # DuckDB's limit already gives up NUMPY_MEMORY (the spec's python_memory: build_partitions lowers it).
    with con.cursor() as reader_con:
        reader = reader_con.sql(load_sql("marts/features_series"), params={
            "first": params["first"], "last": params["last"], "lookback": LOOKBACK, "buckets": buckets,
        }).to_arrow_reader(READ_ROWS)

        def slices() -> Iterator[pa.Table]:
            for bucket, series in _buckets_of(reader, buckets):
                rows = _bucket_rows(series.drop_columns(["bucket"]), previous_of[bucket], params)
                del series  # the bucket's payload keeps the columns its rows need
                if rows is None:
                    left.append(bucket)
                    continue
                for part in rows:
                    yield part.select(columns)

        writer = _RowGroupWriter(con)
        produced = ahead(slices())
        try:
            for rows in produced:
                writer.add(rows)
        finally:
            produced.close()  # stops the producing thread before the reader's cursor closes
        writer.flush()
    # Arrow's allocator keeps freed pages for reuse: give them back before the checks and the export (150 MiB of
    # RSS after a 100,000-account batch, as measured).
    pa.default_memory_pool().release_unused()
    return left


def _split_by_bucket(table: pa.Table, buckets: int) -> list[pa.Table]:
    """A table sorted by its `bucket` column, cut into one table per bucket (empty where none), without that column."""
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return [rows.drop_columns(["bucket"]) for _, rows in _buckets_of(reader, buckets)]


def _buckets_of(reader: pa.RecordBatchReader, buckets: int) -> Iterator[tuple[int, pa.Table]]:
    """(bucket, its rows) for every bucket 0..buckets-1 in order, from batches sorted by bucket."""
    pending: list[pa.RecordBatch] = []
    current = 0
    for batch in reader:
        ids = batch.column("bucket").to_numpy(zero_copy_only=False)
        while len(ids):
            if ids[0] > current:  # the bucket in progress is complete (or had no rows)
                yield current, pa.Table.from_batches(pending, reader.schema)
                pending, current = [], current + 1
                continue
            cut = int(np.searchsorted(ids, current, side="right"))
            pending.append(batch.slice(0, cut))
            batch, ids = batch.slice(cut), ids[cut:]
    while current < buckets:
        yield current, pa.Table.from_batches(pending, reader.schema)
        pending, current = [], current + 1


def _bucket_rows(series: pa.Table, previous: pa.Table, params: dict[str, object]) -> Iterator[pa.Table] | None:
    """One bucket's rows, a slice of window ends at a time; None when an amount is past float64's exact integers."""
    first: date = params["first"]  # type: ignore[assignment]
    last: date = params["last"]  # type: ignore[assignment]
    built_at: datetime = params["built_at"]  # type: ignore[assignment]
    amounts = series.column("current_minor")
    # The extremes as Python ints: abs() of int64's minimum overflows in Arrow.
    extremes = pc.min_max(amounts).as_py() if len(amounts) else {"min": None, "max": None}
    biggest = max((abs(value) for value in extremes.values() if value is not None), default=0)
    if biggest >= EXACT_LIMIT:
        return None
    data = _matrices(series, previous, first, last)
    if data is None:
        return iter(())
    ends = (last - first).days + 1
    return (rows for start in range(0, ends, SLICE_ENDS)
            if (rows := _slice_rows(data, first, start, min(start + SLICE_ENDS, ends), built_at)).num_rows)


def ahead(items: Iterator[pa.Table], depth: int = 1) -> Iterator[pa.Table]:
    """The items of a generator, computed in a thread of their own up to `depth` ahead of the consumer: numpy and
    DuckDB both release the GIL, so the next slice is computed while DuckDB inserts this one (two cores busy), and
    at most depth + 2 slices exist at once. A failure on either side stops the other."""
    queue: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put(("error", exc))

    producer = threading.Thread(target=produce, name="feature-slices", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        producer.join()


class _RowGroupWriter:
    """Appends rows to the features table INSERT_ROW_GROUPS whole row groups at a time, the remainder carried to
    the next rows (of this bucket or the next). Partial row groups left by many small inserts cost every later
    checkpoint seconds of compaction; batches of exactly a row group, several per statement, let DuckDB's
    threads each fill whole row groups (twice the rows per second of one-group statements, as measured)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.carried: pa.Table | None = None

    def add(self, rows: pa.Table) -> None:
        rows = rows if self.carried is None else pa.concat_tables([self.carried, rows])
        if rows.num_rows < INSERT_BATCH_ROWS * INSERT_ROW_GROUPS:
            self.carried = rows
            return
        whole = rows.num_rows // INSERT_BATCH_ROWS * INSERT_BATCH_ROWS
        _insert(self.con, rows.slice(0, whole))
        self.carried = rows.slice(whole)

    def flush(self) -> None:
        if self.carried is not None:
            _insert(self.con, self.carried)
            self.carried = None


def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Append rows to the features table, in batches of exactly a row group (one chunk per column first). Rows go
    through a relation, not a registered view: a view registered inside the batch's transaction keeps its Arrow
    table alive until the commit (memory grew by every slice)."""
    if rows.num_rows:
        rows = rows.combine_chunks()
        con.from_arrow(pa.Table.from_batches(rows.to_batches(max_chunksize=INSERT_BATCH_ROWS))).insert_into(TABLE)


def _matrices(series: pa.Table, previous: pa.Table, first: date, last: date) -> _Bucket | None:
    """Index keys and days, lay the series into matrices and precompute the running sums."""
    base = first - timedelta(days=LOOKBACK)
    days = (last - base).days + 1
    accounts = series.column("account_id").combine_chunks()
    currencies = series.column("currency").combine_chunks()
    n = len(accounts)
    new_key = np.ones(n, dtype=bool)
    if n > 1:
        changed = pc.or_(pc.not_equal(accounts[1:], accounts[:-1]), pc.not_equal(currencies[1:], currencies[:-1]))
        new_key[1:] = changed.to_numpy(zero_copy_only=False)
    row_key = np.cumsum(new_key) - 1
    starts = np.flatnonzero(new_key)
    key_accounts, key_currencies = accounts.take(starts), currencies.take(starts)
    index = {key: i for i, key in enumerate(zip(key_accounts.to_pylist(), key_currencies.to_pylist(), strict=True))}
    # Keys with only a balance before the range (dormant, disconnected) have no daily value in any window of the
    # range, so no rows (the bound): only the keys of the series are laid out.
    before: dict[int, int] = {}
    for position, key in enumerate(zip(previous.column("account_id").to_pylist(),
                                       previous.column("currency").to_pylist(), strict=True)):
        if (row := index.get(key)) is not None:
            before[row] = position
    keys = len(index)
    if keys == 0:
        return None

    epoch_days = series.column("day").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False)
    day = epoch_days - (base - date(1970, 1, 1)).days
    amount = series.column("current_minor").combine_chunks()
    valid = amount.is_valid().to_numpy(zero_copy_only=False)
    amount_int = amount.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    observed = series.column("observed").combine_chunks().fill_null(False).to_numpy(zero_copy_only=False)

    values = np.full((keys, days), np.nan)
    values[row_key[valid], day[valid]] = amount_int[valid].astype(np.float64)
    has_value = ~np.isnan(values)
    amounts = np.zeros((keys, days), dtype=np.int64)
    amounts[row_key, day] = amount_int
    observed_days = np.zeros((keys, days), dtype=bool)
    observed_days[row_key, day] = observed
    negative = has_value & (np.nan_to_num(values) < 0)

    def running(matrix: np.ndarray, dtype: type) -> np.ndarray:
        out = np.zeros((keys, days + 1), dtype=dtype)
        np.cumsum(matrix, axis=1, dtype=dtype, out=out[:, 1:])
        return out

    runs = np.zeros((keys, days), dtype=np.int32)
    run = np.zeros(keys, dtype=np.int32)
    for column in range(days):  # consecutive negative days ending on each day: a short loop over days
        run = (run + 1) * negative[:, column]
        runs[:, column] = run

    # The newest balance as of each day: an observed row on or after $first, else the balance before the range.
    newest = np.full((keys, days), -1, dtype=np.int32)
    observed_in_range = observed & (day >= LOOKBACK)
    newest[row_key[observed_in_range], day[observed_in_range]] = np.flatnonzero(observed_in_range)
    seen_day = np.where(newest >= 0, np.arange(days, dtype=np.int32), np.int32(-1))
    np.maximum.accumulate(seen_day, axis=1, out=seen_day)
    latest = np.where(seen_day >= 0, np.take_along_axis(newest, np.maximum(seen_day, 0), axis=1), -1)
    fallback = np.full(keys, -1, dtype=np.int32)
    for key, position in before.items():
        fallback[key] = n + position
    latest = np.where(latest >= 0, latest, fallback[:, None])

    payload_columns = ["customer_id", "balance_type", "current_minor", "available_minor", "as_of"]
    payload = pa.concat_tables([
        series.select(payload_columns),
        previous.select(payload_columns).cast(series.select(payload_columns).schema),
    ]).combine_chunks()
    # Dictionaries: a customer or a type repeats on every day, so taking rows copies indices, not strings.
    for name in ("customer_id", "balance_type"):
        position = payload.schema.get_field_index(name)
        payload = payload.set_column(position, name, pc.dictionary_encode(payload.column(name)))
    kinds = payload.column("balance_type").chunk(0)
    cash = np.asarray(pc.equal(kinds.dictionary, "cash").fill_null(False))[kinds.indices.fill_null(0)]
    cash &= np.asarray(kinds.is_valid())
    as_of = payload.column("as_of").combine_chunks().cast(pa.int64()).fill_null(0).to_numpy()
    return _Bucket(
        accounts=key_accounts, currencies=key_currencies, values=values,
        sums=running(amounts, np.int64),  # 0 where a day has no value
        counts={"value": running(has_value, np.int32), "observed": running(observed_days, np.int32),
                "negative": running(negative, np.int32)},
        runs=runs, latest=latest, payload=payload, cash=cash, as_of_us=as_of,
    )


def _window_statistics(data: _Bucket, start: int, stop: int, window: int, counts: np.ndarray, sums: np.ndarray
                       ) -> dict[str, np.ndarray]:
    """min, max, p10, p90, stddev and longest negative streak of the windows ending on ends start..stop-1, given
    each window's count of values and their sum."""
    keys, ends = data.values.shape[0], stop - start
    first_day = LOOKBACK + start - window + 1  # the first day the first window reads
    out = {name: np.full((keys, ends), np.nan) for name in ("min", "max", "p10", "p90", "stddev")}
    out["streak"] = np.zeros((keys, ends), dtype=np.int64)
    ramp = np.arange(1, window + 1, dtype=np.int32)
    for k0 in range(0, keys, KEY_CHUNK):
        k1 = min(k0 + KEY_CHUNK, keys)
        block = np.array(sliding_window_view(data.values[k0:k1, first_day:first_day + ends + window - 1], window,
                                             axis=1))
        n = counts[k0:k1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums[k0:k1] / n
            deviation = block - mean[..., None]
            np.nan_to_num(deviation, copy=False, nan=0.0)  # days without a value add nothing
            # Two passes (mean, then squared deviations): as exact as DuckDB's streaming stddev_pop, or more.
            out["stddev"][k0:k1] = np.sqrt(np.einsum("ijk,ijk->ij", deviation, deviation) / n)
        block.sort(axis=2)  # NaN (no value) sorts last
        has = n > 0
        top = np.maximum(n - 1, 0)
        out["min"][k0:k1] = np.where(has, block[..., 0], np.nan)
        out["max"][k0:k1] = np.where(has, np.take_along_axis(block, top[..., None], axis=2)[..., 0], np.nan)
        for name, q in zip(("p10", "p90"), QUANTILES, strict=True):
            # quantile_cont: position (n - 1) * q, linear between its floor and ceiling, as DuckDB computes it.
            position = top * q
            low = np.floor(position).astype(np.int64)
            high = np.ceil(position).astype(np.int64)
            lo = np.take_along_axis(block, low[..., None], axis=2)[..., 0]
            hi = np.take_along_axis(block, high[..., None], axis=2)[..., 0]
            out[name][k0:k1] = np.where(has, np.where(low == high, lo, lo + (hi - lo) * (position - low)), np.nan)
        run_block = np.array(sliding_window_view(data.runs[k0:k1, first_day:first_day + ends + window - 1], window,
                                                 axis=1))
        # A run begun before the window counts from the window's first day.
        np.minimum(run_block, ramp, out=run_block)
        out["streak"][k0:k1] = run_block.max(axis=2)
    return out


def _window_counts(running: np.ndarray, start: int, stop: int, window: int) -> np.ndarray:
    """Window totals from running sums: column t + 1 holds the total of days 0..t."""
    right = running[:, LOOKBACK + start + 1:LOOKBACK + stop + 1]
    left = running[:, LOOKBACK + start + 1 - window:LOOKBACK + stop + 1 - window]
    return right - left


def _slice_rows(data: _Bucket, first: date, start: int, stop: int, built_at: datetime) -> pa.Table:
    """The rows of the ends start..stop-1 (indexes from $first) in (end, key, window) order: sorted by window end."""
    counts = {name: [_window_counts(running, start, stop, w) for w in WINDOWS] for name, running in data.counts.items()}
    # (ends, keys): the bound, a key has rows while its longest window holds a daily value (and so a balance).
    longest = counts["value"][WINDOWS.index(max(WINDOWS))]
    keep = ((longest > 0) & (data.latest[:, LOOKBACK + start:LOOKBACK + stop] >= 0)).T
    end_of_row, key_of_row = np.nonzero(keep)
    pairs = len(key_of_row)
    if pairs == 0:
        return pa.table({})
    sizes = np.array(WINDOWS, dtype=np.int32)
    windows = len(WINDOWS)

    def both(per_window: list[np.ndarray]) -> np.ndarray:
        """(keys, ends) matrices, one per window, as one column of the kept rows, windows side by side."""
        return np.stack([matrix.T[keep] for matrix in per_window], axis=1).reshape(-1)

    def repeated(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, windows)

    totals = [_window_counts(data.sums, start, stop, w) for w in WINDOWS]
    stats = [_window_statistics(data, start, stop, w, n, total)
             for w, n, total in zip(WINDOWS, counts["value"], totals, strict=True)]
    value_days = both(counts["value"])
    none = value_days == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        average = both(totals) / value_days

    latest_rows = repeated(data.latest[key_of_row, LOOKBACK + start + end_of_row])
    payload = data.payload.take(pa.array(latest_rows))
    cash = pa.array(data.cash[latest_rows])
    window_days = np.tile(sizes, pairs)
    window_end_days = repeated((first - date(1970, 1, 1)).days + start + end_of_row).astype(np.int32)
    as_of = data.as_of_us[latest_rows]
    day_end_us = (window_end_days.astype(np.int64) + 1) * 86_400_000_000
    built_us = int((built_at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    staleness = (np.minimum(day_end_us, built_us) - as_of) / _US_PER_HOUR
    key_indices = pa.array(repeated(key_of_row).astype(np.int32))

    def doubles(values: np.ndarray) -> pa.Array:
        return pa.array(values, pa.float64(), mask=none)

    def integers(values: np.ndarray) -> pa.Array:
        return pa.array(np.nan_to_num(values).astype(np.int64), pa.int64(), mask=none)

    def stat(name: str) -> np.ndarray:
        return both([window[name] for window in stats])

    rows = len(latest_rows)
    return pa.table({
        # Keys as dictionaries over the bucket's keys: no string copied per row.
        "account_id": pa.DictionaryArray.from_arrays(key_indices, data.accounts),
        "customer_id": payload.column("customer_id"),
        "currency": pa.DictionaryArray.from_arrays(key_indices, data.currencies),
        "balance_type": payload.column("balance_type"),
        "window_days": pa.array(window_days),
        "window_start": pa.array(window_end_days - (window_days - 1)).cast(pa.date32()),
        "window_end": pa.array(window_end_days).cast(pa.date32()),
        "days_with_value": pa.array(value_days),
        "days_observed": pa.array(both(counts["observed"])),
        "coverage": pa.array(value_days / window_days),
        "avg_daily_balance_minor": doubles(average),
        "min_daily_balance_minor": integers(stat("min")),
        "max_daily_balance_minor": integers(stat("max")),
        "p10_daily_balance_minor": doubles(stat("p10")),
        "p90_daily_balance_minor": doubles(stat("p90")),
        "stddev_daily_balance_minor": doubles(stat("stddev")),
        "days_negative": pc.if_else(cash, pa.array(both(counts["negative"])), None),
        "longest_negative_streak": pc.if_else(cash, pa.array(stat("streak")), None),
        "latest_current_minor": payload.column("current_minor"),
        "latest_available_minor": payload.column("available_minor"),
        "latest_as_of": payload.column("as_of"),
        "staleness_hours": pa.array(staleness, pa.float64()),
        "built_at": pa.array(np.full(rows, built_us), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    })
