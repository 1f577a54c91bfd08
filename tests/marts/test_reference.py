"""The partitioned marts against a brute-force Python reference on a random history: the range builds (several
batches, several hash buckets) and the one-day builds both equal what the definitions say, row for row."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.contract.migrations import migrate
from pipelines.marts import build as marts
from pipelines.marts import feature_windows
from pipelines.marts.build import HistorySettings, build_marts, build_partition
from tests.marts.conftest import days, quantile_linear

START = date(2025, 1, 1)
TODAY = date(2025, 7, 20)  # 201 days: seven daily batches and two feature batches
BUILD_AT = datetime.combine(TODAY, time(15, 30), tzinfo=UTC)
SETTINGS = HistorySettings(history_start=START, carry_forward_days=5)
WINDOWS = (30, 90)  # written out, not imported: the declaration is what this test checks


@dataclass(frozen=True)
class Balance:
    account_id: str
    customer_id: str
    balance_type: str
    currency: str
    as_of: datetime
    current_minor: int
    available_minor: int | None


def random_history(seed: int) -> list[Balance]:
    """Twelve keys with gaps longer and shorter than the carry limit, several rows a day, negative runs, keys that
    start late or stop early, keys dormant past the features' bound that are observed again, and balances from
    before the first partition."""
    rng = random.Random(seed)
    balances: list[Balance] = []
    for n in range(12):
        account, kind = f"fca_{n:02d}", "credit" if n % 4 == 3 else "cash"
        currencies = ["usd", "eur"] if n % 5 == 0 else ["usd"]
        first = START - timedelta(days=rng.choice([40, 3, 0])) + timedelta(days=rng.choice([0, 0, 25, 120]))
        # Some stop early: dormant for the whole second batch of window ends, with no daily row to read.
        last = TODAY if n % 3 else TODAY - timedelta(days=rng.choice([10, 60, 170]))
        # Some sleep longer than the carry limit plus the longest window (a batch boundary inside), then wake up.
        dormant = (first + timedelta(days=rng.choice([20, 50])), timedelta(days=rng.choice([96, 110, 130]))) \
            if n % 4 == 1 else None
        for currency in currencies:
            day, level = first, rng.randint(-500, 2_000)
            while day <= last:
                if dormant and dormant[0] <= day < dormant[0] + dormant[1]:
                    day = dormant[0] + dormant[1]
                    continue
                for _ in range(rng.choice([1, 1, 1, 2, 3])):
                    level += rng.randint(-400, 380)
                    stamp = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(seconds=rng.randint(0, 86_399))
                    amount = -abs(level) if kind == "credit" else level
                    available = None if kind == "credit" or rng.random() < 0.1 else amount - 7
                    if stamp <= BUILD_AT:
                        balances.append(Balance(account, f"cus_{n // 2}", kind, currency, stamp, amount, available))
                day += timedelta(days=rng.choice([1, 1, 1, 1, 2, 3, 7, 12]))
    unique = {(b.account_id, b.currency, b.as_of): b for b in balances}
    return list(unique.values())


def load(path: Path, balances: list[Balance]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # days are cut in UTC whatever the session's zone
    migrate(con, str(path))
    fetched = BUILD_AT - timedelta(hours=1)
    con.executemany(
        "INSERT INTO fc_balances VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, ?)",
        [(b.account_id, b.customer_id, b.balance_type, b.currency, b.as_of, b.current_minor, b.available_minor,
          Decimal(b.current_minor) / 100, None if b.available_minor is None else Decimal(b.available_minor) / 100,
          fetched) for b in balances])
    return con


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def reference_daily(balances: list[Balance]) -> dict[tuple[str, str, date], tuple[bool, Balance]]:
    """(account, currency, day) -> (observed, the balance the row holds), straight from the definition."""
    by_key: dict[tuple[str, str], list[Balance]] = defaultdict(list)
    for b in balances:
        by_key[(b.account_id, b.currency)].append(b)
    rows = {}
    for key, rows_of_key in by_key.items():
        for day in days(START, TODAY):
            today = [b for b in rows_of_key if utc_day(b.as_of) == day]
            if today:
                rows[(*key, day)] = (True, max(today, key=lambda b: b.as_of))
                continue
            before = [b for b in rows_of_key if utc_day(b.as_of) < day]
            if before:
                newest = max(before, key=lambda b: b.as_of)
                if (day - utc_day(newest.as_of)).days <= SETTINGS.carry_forward_days:
                    rows[(*key, day)] = (False, newest)
    return rows


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def reference_features(balances: list[Balance], daily: dict) -> dict[tuple[str, str, date, int], dict]:
    """(account, currency, window_end, window_days) -> the feature row's values, from the definition."""
    keys = {(b.account_id, b.currency) for b in balances}
    out = {}
    for account, currency in keys:
        mine = [b for b in balances if (b.account_id, b.currency) == (account, currency)]
        for end in days(START, TODAY):
            end_at = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
            known = [b for b in mine if b.as_of < end_at]
            if not known:
                continue
            latest = max(known, key=lambda b: b.as_of)
            cash = latest.balance_type == "cash"
            rows = {}
            for window in WINDOWS:
                span = [end - timedelta(days=n) for n in range(window - 1, -1, -1)]
                cells = [daily.get((account, currency, d)) for d in span]
                values = [c[1].current_minor for c in cells if c is not None]
                negative = [c is not None and c[1].current_minor < 0 for c in cells]
                mean = sum(values) / len(values) if values else None
                rows[(account, currency, end, window)] = {
                    "customer_id": latest.customer_id, "balance_type": latest.balance_type,
                    "window_start": span[0], "days_with_value": len(values),
                    "days_observed": sum(1 for c in cells if c is not None and c[0]),
                    "coverage": len(values) / window,
                    "avg_daily_balance_minor": mean,
                    "min_daily_balance_minor": min(values) if values else None,
                    "max_daily_balance_minor": max(values) if values else None,
                    "p10_daily_balance_minor": quantile_linear(values, 0.1) if values else None,
                    "p90_daily_balance_minor": quantile_linear(values, 0.9) if values else None,
                    "stddev_daily_balance_minor": (
                        math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) if values else None),
                    "days_negative": sum(negative) if cash else None,
                    "longest_negative_streak": longest_run(negative) if cash else None,
                    "latest_current_minor": latest.current_minor,
                    "latest_available_minor": latest.available_minor,
                    "latest_as_of": latest.as_of,
                    "staleness_hours": (min(end_at, BUILD_AT) - latest.as_of).total_seconds() / 3600,
                }
            # The bound: a key has rows for an end only while one of its windows holds a daily value.
            if any(row["days_with_value"] for row in rows.values()):
                out |= rows
    return out


def assert_daily(con: duckdb.DuckDBPyConnection, expected: dict) -> None:
    rows = con.execute("SELECT account_id, currency, day, observed, as_of, current_minor, available_minor, "
                       "customer_id, balance_type FROM fc_daily_balances").fetchall()
    got = {(a, c, d): (o, as_of, cur, avail, cus, kind) for a, c, d, o, as_of, cur, avail, cus, kind in rows}
    assert len(got) == len(rows), "one row per (account, currency, day)"
    want = {k: (o, b.as_of, b.current_minor, b.available_minor, b.customer_id, b.balance_type)
            for k, (o, b) in expected.items()}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value, key


def close(got: object, want: object) -> bool:
    if isinstance(want, float) and got is not None:
        return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-6)  # type: ignore[arg-type]
    return got == want


def assert_features(con: duckdb.DuckDBPyConnection, expected: dict) -> None:
    cursor = con.execute("SELECT * EXCLUDE (built_at) FROM fc_underwriting_features")
    names = [d[0] for d in cursor.description]
    got = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        got[(record["account_id"], record["currency"], record["window_end"], record["window_days"])] = record
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        for column, value in want.items():
            assert close(got[key][column], value), (key, column, got[key][column], value)


@pytest.fixture(scope="module")
def history() -> tuple[list[Balance], dict, dict]:
    balances = random_history(seed=20261129)
    daily = reference_daily(balances)
    features = reference_features(balances, daily)
    ends: dict[tuple[str, str], set[date]] = defaultdict(set)
    for account, currency, end, _ in features:
        ends[(account, currency)].add(end)
    # The history holds what the bound is about: a key that stops having rows and starts again.
    assert any(len(e) < (max(e) - min(e)).days + 1 for e in ends.values())
    return balances, daily, features


@pytest.mark.parametrize("engine", ["numpy", "sql"])
def test_range_builds_in_batches_and_buckets_equal_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: tuple[list[Balance], dict, dict], engine: str
) -> None:
    balances, daily, features = history
    # Several hash buckets per batch, as at 100,000 accounts.
    monkeypatch.setattr(marts, "BUCKET_ROWS", dict.fromkeys(marts.BUCKET_ROWS, 500))
    # Few ends per inserted slice and keys per block, so the numpy path crosses its own boundaries too.
    monkeypatch.setattr(feature_windows, "SLICE_ENDS", 7)
    monkeypatch.setattr(feature_windows, "KEY_CHUNK", 3)
    # Row groups of 40 rows, two per insert: rows wait for whole groups across slices and buckets.
    monkeypatch.setattr(feature_windows, "INSERT_BATCH_ROWS", 40)
    monkeypatch.setattr(feature_windows, "INSERT_ROW_GROUPS", 2)
    built = {"numpy": 0}
    numpy_rows = feature_windows._bucket_rows

    def counted(*args: object) -> object:
        rows = numpy_rows(*args)  # type: ignore[arg-type]
        built["numpy"] += rows is not None
        return rows

    monkeypatch.setattr(feature_windows, "_bucket_rows", counted)
    if engine == "sql":  # amounts past float64's exact integers take the SQL statement
        monkeypatch.setattr(feature_windows, "EXACT_LIMIT", 0)
    con = load(tmp_path / "range.duckdb", balances)
    build_marts(con, BUILD_AT, SETTINGS, full=True)
    assert_daily(con, daily)
    assert_features(con, features)
    assert (built["numpy"] > 0) == (engine == "numpy")


def test_one_day_builds_equal_the_reference(tmp_path: Path, history: tuple[list[Balance], dict, dict]) -> None:
    balances, daily, features = history
    con = load(tmp_path / "daily.duckdb", balances)
    # The way the daily schedule grows history: one day at a time, each reading the partition before it.
    for day in days(START, TODAY):
        build_partition(con, "fc_daily_balances", day, BUILD_AT, SETTINGS)
        build_partition(con, "fc_underwriting_features", day, BUILD_AT, SETTINGS)
    assert_daily(con, daily)
    assert_features(con, features)
