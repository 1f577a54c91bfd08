"""Dormant keys stop producing feature rows at the bound and start again when observed again, on a real DuckDB
warehouse: the range build, the day-by-day build and the incremental runs agree; migration 0006 drops old rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.contract.migrations import current_version, migrate, migrations
from pipelines.marts.build import HistorySettings, build_marts, build_partition
from tests.marts.conftest import days, fetch_dicts

START = date(2024, 12, 20)
CARRY = 31
SETTINGS = HistorySettings(history_start=START, carry_forward_days=CARRY)
ASLEEP = date(2025, 1, 1)  # the sleeper's last balance before it goes dormant
BOUND = ASLEEP + timedelta(days=CARRY + 89)  # 2025-05-01: its 90-day window still holds the last carried day
AWAKE = date(2025, 6, 15)  # observed again
TODAY = date(2025, 6, 20)


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def add_balance(con: duckdb.DuckDBPyConnection, account: str, day: date, amount: int, fetched: datetime) -> None:
    con.execute(
        "INSERT INTO fc_balances VALUES (?, 'cus_1', 'cash', 'usd', ?, ?, ?, NULL, ?, ?, NULL, ?)",
        [account, at(day), amount, amount, amount / 100, amount / 100, fetched])


def warehouse(path: Path, until: date) -> duckdb.DuckDBPyConnection:
    """The sleeper (observed 2024-12-25 and 2025-01-01, then from AWAKE on) and a key observed every day."""
    con = duckdb.connect(str(path))
    migrate(con, str(path))
    for day in (date(2024, 12, 25), ASLEEP):
        add_balance(con, "fca_sleep", day, 500, at(day, 13))
    for day in days(date(2024, 12, 22), until):
        add_balance(con, "fca_daily", day, 100 + day.day, at(day, 13))
        if day >= AWAKE:
            add_balance(con, "fca_sleep", day, 900 + day.day, at(day, 13))
    return con


def sleeper_ends(con: duckdb.DuckDBPyConnection) -> dict[date, dict[int, dict]]:
    rows = fetch_dicts(con, "SELECT * FROM fc_underwriting_features WHERE account_id = 'fca_sleep'")
    out: dict[date, dict[int, dict]] = {}
    for row in rows:
        out.setdefault(row["window_end"], {})[row["window_days"]] = row
    return out


def expected_ends(until: date) -> list[date]:
    return [*days(date(2024, 12, 25), BOUND), *(d for d in days(AWAKE, until))]


def assert_bounded(con: duckdb.DuckDBPyConnection, until: date) -> None:
    ends = sleeper_ends(con)
    assert sorted(ends) == expected_ends(until)
    assert all(set(windows) == {30, 90} for windows in ends.values())
    last = ends[BOUND]  # the last carried day (2025-02-01) is the 90-day window's first day
    assert (last[90]["days_with_value"], last[90]["window_start"]) == (1, ASLEEP + timedelta(days=CARRY))
    assert (last[30]["days_with_value"], last[30]["avg_daily_balance_minor"]) == (0, None)
    assert last[90]["latest_as_of"] == at(ASLEEP)
    if until >= AWAKE:
        woken = ends[AWAKE]  # starts again from its new balance alone
        assert woken[90]["latest_as_of"] == at(AWAKE) and woken[90]["latest_current_minor"] == 915
        assert (woken[90]["days_with_value"], woken[90]["days_observed"]) == (1, 1)
    # The key observed every day is never cut.
    daily = {r[0] for r in con.execute(
        "SELECT window_end FROM fc_underwriting_features WHERE account_id = 'fca_daily'").fetchall()}
    assert daily == set(days(date(2024, 12, 22), until))


@pytest.mark.parametrize("how", ["range", "day_by_day"])
def test_a_dormant_key_stops_at_the_bound_and_restarts_when_observed(tmp_path: Path, how: str) -> None:
    con = warehouse(tmp_path / f"{how}.duckdb", TODAY)
    build_at = at(TODAY, 18)
    if how == "range":
        build_marts(con, build_at, SETTINGS, full=True)
    else:
        for day in days(START, TODAY):
            build_partition(con, "fc_daily_balances", day, build_at, SETTINGS)
            build_partition(con, "fc_underwriting_features", day, build_at, SETTINGS)
    assert_bounded(con, TODAY)


def test_runs_stop_a_dormant_key_and_start_it_again_incrementally(tmp_path: Path) -> None:
    before_awake = AWAKE - timedelta(days=5)
    con = warehouse(tmp_path / "runs.duckdb", before_awake)
    build_marts(con, at(before_awake, 18), SETTINGS)
    assert_bounded(con, before_awake)
    # Dormant past the bound: no features today, but its latest balance stays.
    latest = fetch_dicts(con, "SELECT * FROM fc_latest_balances WHERE account_id = 'fca_sleep'")
    assert [r["as_of"] for r in latest] == [at(ASLEEP)]
    current = con.execute("SELECT count(*) FROM fc_current_underwriting_features WHERE account_id = 'fca_sleep'")
    assert current.fetchone() == (0,)
    # Daily runs: each day's new balances, then the one-day build.
    for day in days(before_awake + timedelta(days=1), TODAY):
        add_balance(con, "fca_daily", day, 100 + day.day, at(day, 13))
        if day >= AWAKE:
            add_balance(con, "fca_sleep", day, 900 + day.day, at(day, 13))
        build_marts(con, at(day, 18), SETTINGS)
    assert_bounded(con, TODAY)
    current = con.execute("SELECT window_end FROM fc_current_underwriting_features WHERE account_id = 'fca_sleep'")
    assert {r[0] for r in current.fetchall()} == {TODAY}


def test_migration_0006_drops_the_rows_past_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = warehouse(path, TODAY)
    build_marts(con, at(TODAY, 18), SETTINGS, full=True)
    bounded = con.execute("SELECT * FROM fc_underwriting_features ORDER BY ALL").fetchall()
    # What the unbounded code left: rows with empty windows after the bound, copied from the bound's rows.
    con.execute("""
        INSERT INTO fc_underwriting_features
        SELECT f.* REPLACE (e.day AS window_end, CAST(e.day - (f.window_days - 1) AS DATE) AS window_start,
                          0 AS days_with_value, 0 AS days_observed, 0.0 AS coverage,
                          NULL AS avg_daily_balance_minor, NULL AS min_daily_balance_minor,
                          NULL AS max_daily_balance_minor, NULL AS p10_daily_balance_minor,
                          NULL AS p90_daily_balance_minor, NULL AS stddev_daily_balance_minor)
        FROM fc_underwriting_features AS f
        CROSS JOIN (SELECT CAST(unnest(generate_series(?::DATE + 1, ?::DATE - 1, INTERVAL 1 DAY)) AS DATE) AS day) e
        WHERE f.account_id = 'fca_sleep' AND f.window_end = ?""", [BOUND, AWAKE, BOUND])
    stale = con.execute("SELECT count(*) FROM fc_underwriting_features").fetchone()[0]
    assert stale == len(bounded) + 2 * (AWAKE - BOUND).days - 2
    con.execute("UPDATE _fc_mart_partitions SET row_count = row_count + 2 "
                "WHERE mart = 'fc_underwriting_features' AND partition_day > ? AND partition_day < ?", [BOUND, AWAKE])
    # The upgrade runs each migration's file after the warehouse's version; later migrations touch other tables, so
    # 0006's file is run as the upgrade would run it, and the warehouse still passes the shape check after it.
    con.execute(next(m for m in migrations() if m.version == 6).sql)
    assert migrate(con, str(path)).from_version == current_version()
    assert con.execute("SELECT * FROM fc_underwriting_features ORDER BY ALL").fetchall() == bounded
    counts = dict(con.execute("SELECT window_end, count(*) FROM fc_underwriting_features GROUP BY ALL").fetchall())
    recorded = con.execute("SELECT partition_day, row_count FROM _fc_mart_partitions "
                           "WHERE mart = 'fc_underwriting_features' AND partition_day IS NOT NULL").fetchall()
    assert {day: n for day, n in recorded} == {day: counts.get(day, 0) for day, _ in recorded}
