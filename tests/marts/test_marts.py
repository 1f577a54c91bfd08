"""The marts built day by day on the hand-made history in conftest, against values worked out by hand here."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

import duckdb
import pytest

from pipelines.marts import build as marts
from pipelines.marts.build import MART_TABLES, MartBuildError, build_marts
from tests.marts.conftest import BUILD_AT, BUILD_DAY, SETTINGS, days, fetch_dicts, quantile_linear, ts

D = date.fromisoformat


def series(*spans: tuple[str, str, int | None, int | None, int | None, str | None]) -> dict[date, tuple]:
    """Day -> (current, available, used, observed) from spans (first, last, current, available, used,
    observed_day): every day of a span carries the same values, observed only on observed_day."""
    out: dict[date, tuple] = {}
    for first, last, current, available, used, observed_day in spans:
        for day in days(D(first), D(last)):
            out[day] = (current, available, used, observed_day is not None and day == D(observed_day))
    return out


# Worked out by hand from conftest.BALANCES, build day 2025-03-31, carry-forward 31 days.
EXPECTED_DAILY: dict[tuple[str, str], dict[date, tuple]] = {
    ("fca_gap", "usd"): series(
        ("2025-03-25", "2025-03-27", 1200, 1100, None, "2025-03-25"),  # the later of two rows that day
        ("2025-03-28", "2025-03-30", 500, None, None, "2025-03-28"),   # available stays null, not 1100
        ("2025-03-31", "2025-03-31", 700, 650, None, "2025-03-31"),
    ),
    ("fca_gap", "eur"): series(("2025-03-29", "2025-03-31", 4000, 3900, None, "2025-03-29")),
    ("fca_neg", "usd"): series(
        ("2025-03-20", "2025-03-20", 100, 100, None, "2025-03-20"),
        ("2025-03-21", "2025-03-21", -50, -50, None, "2025-03-21"),
        ("2025-03-22", "2025-03-22", -60, -60, None, "2025-03-22"),
        ("2025-03-23", "2025-03-23", 10, 10, None, "2025-03-23"),
        ("2025-03-24", "2025-03-25", -1, -1, None, "2025-03-24"),
        ("2025-03-26", "2025-03-26", -5, -5, None, "2025-03-26"),
        ("2025-03-27", "2025-03-27", 20, 20, None, "2025-03-27"),
        ("2025-03-28", "2025-03-31", -3, -3, None, "2025-03-28"),
    ),
    ("fca_inactive", "usd"): series(("2025-03-30", "2025-03-31", 999999, 999999, None, "2025-03-30")),
    ("fca_credit", "usd"): series(
        ("2025-03-29", "2025-03-30", -50000, None, -50000, "2025-03-29"),  # 22:00 New York = 02:00 UTC next day
        ("2025-03-31", "2025-03-31", -52000, None, -52000, "2025-03-31"),
    ),
    # Carried 31 days after its only observation, then no row at all.
    ("fca_old", "usd"): series(("2024-12-01", "2025-01-01", 300, 250, None, "2024-12-01")),
    ("fca_fallback", "usd"): series(
        ("2025-03-30", "2025-03-30", 5000, 4500, None, "2025-03-30"),
        ("2025-03-31", "2025-03-31", 4000, None, None, "2025-03-31"),
    ),
    ("fca_jpy", "jpy"): series(("2025-03-10", "2025-03-31", 150000, 150000, None, "2025-03-10")),
    ("fca_long_neg", "usd"): series(  # carried until 2025-02-15, a gap, then observed again
        ("2025-01-15", "2025-02-15", -100, -100, None, "2025-01-15"),
        ("2025-03-06", "2025-03-31", 200, 200, None, "2025-03-06"),
    ),
}
CREDIT = {("fca_credit", "usd")}


@pytest.fixture
def built(warehouse_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    build_marts(warehouse_con, BUILD_AT, SETTINGS)
    return warehouse_con


def features_on(con: duckdb.DuckDBPyConnection, day: date) -> list[dict]:
    return fetch_dicts(con, "SELECT * FROM fc_underwriting_features WHERE window_end = ?", [day])


def test_build_returns_row_counts_of_every_mart(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    counts = build_marts(warehouse_con, BUILD_AT, SETTINGS)
    assert list(counts) == list(MART_TABLES)
    assert counts["fc_latest_balances"] == len(EXPECTED_DAILY)
    assert counts["fc_daily_balances"] == sum(len(s) for s in EXPECTED_DAILY.values())
    for table, count in counts.items():
        assert warehouse_con.execute(f"SELECT count(*) FROM {table}").fetchone() == (count,)
    # A key has its two windows on a day while its 90-day window holds a daily value (fca_old: to the build day).
    expected_features = sum(
        2 for series in EXPECTED_DAILY.values() for end in days(SETTINGS.history_start, BUILD_DAY)
        if any(end - timedelta(days=89) <= day <= end and value[0] is not None for day, value in series.items()))
    assert counts["fc_underwriting_features"] == expected_features
    current = fetch_dicts(warehouse_con, "SELECT * FROM fc_current_underwriting_features")
    assert {r["window_end"] for r in current} == {BUILD_DAY} and len(current) == 2 * len(EXPECTED_DAILY)


def test_daily_carries_the_last_row_of_each_utc_day_forward(built: duckdb.DuckDBPyConnection) -> None:
    rows = fetch_dicts(built, "SELECT * FROM fc_daily_balances")
    got: dict[tuple[str, str], dict[date, tuple]] = {}
    for row in rows:
        got.setdefault((row["account_id"], row["currency"]), {})[row["day"]] = (
            row["current_minor"], row["available_minor"], row["used_minor"], row["observed"])
    assert got == EXPECTED_DAILY
    assert max(row["day"] for row in rows) == BUILD_DAY


def test_daily_keeps_the_carried_rows_as_of_type_and_exact_major_units(built: duckdb.DuckDBPyConnection) -> None:
    gap = fetch_dicts(built, "SELECT * FROM fc_daily_balances WHERE account_id = 'fca_gap' AND currency = 'usd' "
                             "AND day = DATE '2025-03-27'")[0]
    assert gap["as_of"] == ts("2025-03-25T20:00:00+00:00")
    assert gap["balance_type"] == "cash" and gap["customer_id"] == "cus_1"
    assert str(gap["current"]) == "12.0000"
    jpy = fetch_dicts(built, "SELECT * FROM fc_daily_balances WHERE currency = 'jpy' AND day = DATE '2025-03-31'")[0]
    assert str(jpy["current"]) == "150000.0000"  # zero-decimal: minor units are major units
    credit = fetch_dicts(built, "SELECT * FROM fc_daily_balances WHERE account_id = 'fca_credit' LIMIT 1")[0]
    assert credit["balance_type"] == "credit"


def test_latest_balances(built: duckdb.DuckDBPyConnection) -> None:
    rows = {(r["account_id"], r["currency"]): r for r in fetch_dicts(built, "SELECT * FROM fc_latest_balances")}
    assert set(rows) == set(EXPECTED_DAILY)
    gap = rows[("fca_gap", "usd")]
    assert (gap["current_minor"], gap["available_minor"], gap["as_of"]) == (700, 650, ts("2025-03-31T08:00:00+00:00"))
    assert gap["staleness_hours"] == pytest.approx(4.0)
    assert (gap["account_status"], gap["category"], gap["institution_name"]) == ("active", "cash", "StripeBank")
    old = rows[("fca_old", "usd")]
    assert old["staleness_hours"] == pytest.approx((120 * 24) + 12)  # 2024-12-01 00:00 -> 2025-03-31 12:00
    assert rows[("fca_inactive", "usd")]["account_status"] == "inactive"
    credit = rows[("fca_credit", "usd")]
    assert (credit["balance_type"], credit["current_minor"], credit["used_minor"]) == ("credit", -52000, -52000)
    assert all(r["built_at"] == BUILD_AT for r in rows.values())


def expected_features(key: tuple[str, str], window_days: int) -> dict:
    """The feature definitions applied to the hand-written daily series, independently of the SQL."""
    start = BUILD_DAY - timedelta(days=window_days - 1)
    in_window = {day: v for day, v in EXPECTED_DAILY[key].items() if start <= day <= BUILD_DAY}
    values = [v[0] for _, v in sorted(in_window.items())]
    if not values:
        return {"days_with_value": 0, "days_observed": 0, "coverage": 0.0, "avg_daily_balance_minor": None,
                "min_daily_balance_minor": None, "p90_daily_balance_minor": None}
    return {
        "days_with_value": len(values),
        "days_observed": sum(1 for v in in_window.values() if v[3]),
        "coverage": len(values) / window_days,
        "avg_daily_balance_minor": statistics.fmean(values),
        "min_daily_balance_minor": min(values),
        "max_daily_balance_minor": max(values),
        "p10_daily_balance_minor": quantile_linear(values, 0.1),
        "p90_daily_balance_minor": quantile_linear(values, 0.9),
        "stddev_daily_balance_minor": statistics.pstdev(values),
    }


def test_features_statistics_over_each_window(built: duckdb.DuckDBPyConnection) -> None:
    rows = features_on(built, BUILD_DAY)
    assert {(r["account_id"], r["currency"], r["window_days"]) for r in rows} == {
        (*key, w) for key in EXPECTED_DAILY for w in (30, 90)}
    for row in rows:
        key = (row["account_id"], row["currency"])
        expected = expected_features(key, row["window_days"])
        for name, value in expected.items():
            assert row[name] == (value if value is None else pytest.approx(value)), (key, row["window_days"], name)
        assert row["window_end"] == BUILD_DAY
        assert row["window_start"] == BUILD_DAY - timedelta(days=row["window_days"] - 1)


def test_features_hand_checked_cases(built: duckdb.DuckDBPyConnection) -> None:
    rows = {(r["account_id"], r["currency"], r["window_days"]): r for r in features_on(built, BUILD_DAY)}
    # Negative days and streaks: -50 -60 | -1 -1(carried) -5 | -3 -3 -3 -3 (last three carried).
    neg = rows[("fca_neg", "usd", 30)]
    assert (neg["days_negative"], neg["longest_negative_streak"]) == (9, 4)
    assert (neg["days_with_value"], neg["days_observed"]) == (12, 8)  # 8 rows over 12 days
    assert neg["coverage"] == pytest.approx(12 / 30)
    # A 32-day negative run (2025-01-15 observed, carried to 2025-02-15): in the 90-day window (from 2025-01-01),
    # not in the 30-day one (from 2025-03-02), where only the 200s of 2025-03-06 on count.
    long90, long30 = rows[("fca_long_neg", "usd", 90)], rows[("fca_long_neg", "usd", 30)]
    assert (long90["days_negative"], long90["longest_negative_streak"], long90["days_with_value"]) == (32, 32, 58)
    assert (long30["days_negative"], long30["longest_negative_streak"], long30["days_observed"]) == (0, 0, 1)
    # Observed 2024-12-01, carried to 2025-01-01: one day in the 90-day window, none in the 30-day one, where
    # the row stays with nulls and the latest balance (coverage is honest).
    old90, old30 = rows[("fca_old", "usd", 90)], rows[("fca_old", "usd", 30)]
    assert (old90["days_with_value"], old90["days_observed"], old90["coverage"]) == (1, 0, pytest.approx(1 / 90))
    assert (old30["days_with_value"], old30["coverage"], old30["avg_daily_balance_minor"]) == (0, 0.0, None)
    assert (old30["days_negative"], old30["longest_negative_streak"]) == (0, 0)
    assert old30["latest_as_of"] == ts("2024-12-01T00:00:00+00:00") and old30["latest_current_minor"] == 300
    assert old30["staleness_hours"] == pytest.approx(2892.0)  # 2024-12-01 00:00 -> built at 2025-03-31 12:00
    # A single observation in a zero-decimal currency, 22 days before the build day.
    jpy = rows[("fca_jpy", "jpy", 30)]
    assert (jpy["days_with_value"], jpy["days_observed"], jpy["min_daily_balance_minor"]) == (22, 1, 150000)
    assert jpy["coverage"] == pytest.approx(22 / 30)
    # Credit: statistics on current, no negative-day features.
    credit = rows[("fca_credit", "usd", 30)]
    assert (credit["days_negative"], credit["longest_negative_streak"]) == (None, None)
    assert credit["avg_daily_balance_minor"] == pytest.approx((-50000 * 2 - 52000) / 3)
    assert (credit["latest_current_minor"], credit["latest_available_minor"]) == (-52000, None)
    # p10/p90 interpolate: fca_neg 30-day sorted values -60 -50 -5 -3 -3 -3 -3 -1 -1 10 20 100.
    assert neg["p10_daily_balance_minor"] == pytest.approx(-50 + 0.1 * (-5 - -50))
    assert neg["p90_daily_balance_minor"] == pytest.approx(10 + 0.9 * (20 - 10))


def test_customer_liquidity(built: duckdb.DuckDBPyConnection) -> None:
    rows = {(r["customer_id"], r["currency"]): r for r in fetch_dicts(built, "SELECT * FROM fc_customer_liquidity")}
    assert set(rows) == {("cus_1", "usd"), ("cus_1", "eur"), ("cus_2", "usd"), ("cus_3", "jpy"), ("cus_3", "usd")}
    cus1 = rows[("cus_1", "usd")]  # fca_gap 650 + fca_neg -3; fca_inactive left out
    assert (cus1["cash_available_minor"], cus1["cash_accounts"], cus1["accounts"]) == (647, 2, 2)
    assert cus1["cash_accounts_current_fallback"] == 0
    assert (cus1["credit_accounts"], cus1["credit_current_minor"]) == (0, None)
    cus2 = rows[("cus_2", "usd")]  # fca_old available 250 + fca_fallback current 4000; fca_credit -52000
    assert (cus2["cash_available_minor"], cus2["cash_accounts"]) == (4250, 2)
    assert cus2["cash_accounts_current_fallback"] == 1
    assert (cus2["credit_current_minor"], cus2["credit_accounts"], cus2["accounts"]) == (-52000, 1, 3)
    assert str(cus2["cash_available"]) == "42.5000" and str(cus2["credit_current"]) == "-520.0000"
    assert cus2["oldest_as_of"] == ts("2024-12-01T00:00:00+00:00")  # the latest balance: not bounded by carry
    assert cus2["max_staleness_hours"] == pytest.approx(2892.0)
    assert rows[("cus_3", "jpy")]["cash_available_minor"] == 150000


def test_rebuild_replaces_and_is_deterministic(built: duckdb.DuckDBPyConnection) -> None:
    first = {t: built.execute(f"SELECT * EXCLUDE (built_at) FROM {t} ORDER BY ALL").fetchall() for t in MART_TABLES}
    counts = build_marts(built, BUILD_AT + timedelta(minutes=5), SETTINGS, full=True)
    assert counts["fc_daily_balances"] == sum(len(s) for s in EXPECTED_DAILY.values())
    again = {t: built.execute(f"SELECT * EXCLUDE (built_at) FROM {t} ORDER BY ALL").fetchall() for t in MART_TABLES}
    staleness_moved = {"fc_latest_balances", "fc_customer_liquidity", "fc_underwriting_features"}
    for table in set(MART_TABLES) - staleness_moved:
        assert again[table] == first[table], table
    assert len(again["fc_underwriting_features"]) == len(first["fc_underwriting_features"])


def test_failed_day_keeps_the_old_partition(
    built: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = built.execute("SELECT * FROM fc_daily_balances ORDER BY ALL").fetchall()
    real_load_sql = marts.load_sql

    def load_sql_breaking_the_daily_mart(name: str) -> str:
        return "SELECT * FROM no_such_table" if name == "marts/fc_daily_balances" else real_load_sql(name)

    monkeypatch.setattr(marts, "load_sql", load_sql_breaking_the_daily_mart)
    with pytest.raises(duckdb.CatalogException):
        marts.build_partition(built, "fc_daily_balances", BUILD_DAY, BUILD_AT, SETTINGS)
    # The day's delete was rolled back with the failed insert.
    assert built.execute("SELECT * FROM fc_daily_balances ORDER BY ALL").fetchall() == before


def test_bad_requests_fail_with_one_clear_line(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(MartBuildError, match="timezone-aware"):
        build_marts(warehouse_con, datetime(2025, 3, 31, 12, 0))  # naive on purpose
    with pytest.raises(MartBuildError, match="not a partitioned mart"):
        marts.build_partitions(warehouse_con, "fc_nope", BUILD_DAY, BUILD_DAY, BUILD_AT, SETTINGS)
    with pytest.raises(MartBuildError, match="empty range"):
        marts.build_partitions(warehouse_con, "fc_daily_balances", BUILD_DAY, date(2025, 1, 1), BUILD_AT, SETTINGS)
    empty = duckdb.connect()
    with pytest.raises(MartBuildError, match="fc_balances"):
        build_marts(empty, BUILD_AT)

