"""History by the day: a partition alone equals a full rebuild's, late balances rebuild from their day on,
carry-forward is bounded, features are point in time, and a 0.1.0 warehouse's marts are rebuilt."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.marts.build import HistorySettings, build_marts, build_partition, ensure_mart_tables, out_of_date_start
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse
from tests.iceberg_tables import duckdb_rows, iceberg_rows
from tests.marts.conftest import BUILD_AT, BUILD_DAY, SETTINGS, create_warehouse, fetch_dicts, insert_balances
from tests.schema.helpers import table_rows, unpack_0_1_0

D = date.fromisoformat
CUSTOMERS = {"fca_gap": "cus_1", "fca_neg": "cus_1", "fca_old": "cus_2", "fca_new": "cus_9"}


def partition(con: duckdb.DuckDBPyConnection, table: str, column: str, day: date) -> list[tuple]:
    return con.execute(f"SELECT * EXCLUDE (built_at) FROM {table} WHERE {column} = ? ORDER BY ALL", [day]).fetchall()


def same_rows(got: list[tuple], expected: list[tuple]) -> bool:
    """Row for row equal; DOUBLE statistics may differ in their last bits (a window pass sums in another order)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert x == (pytest.approx(y, rel=1e-12) if isinstance(y, float) else y), (a, b)
    return True


def build_times(con: duckdb.DuckDBPyConnection, mart: str) -> dict[date, datetime]:
    rows = con.execute("SELECT partition_day, built_at FROM _fc_mart_partitions WHERE mart = ? "
                       "AND partition_day IS NOT NULL", [mart]).fetchall()
    return dict(rows)


@pytest.mark.parametrize("day", [D("2025-03-10"), D("2025-03-29"), BUILD_DAY])
def test_a_partition_built_alone_equals_the_same_day_of_a_full_rebuild(
    warehouse_con: duckdb.DuckDBPyConnection, tmp_path, day: date
) -> None:
    build_marts(warehouse_con, BUILD_AT, SETTINGS, full=True)
    full_daily = partition(warehouse_con, "fc_daily_balances", "day", day)
    full_features = partition(warehouse_con, "fc_underwriting_features", "window_end", day)
    assert full_daily and full_features
    # The same day on a warehouse where nothing else was ever built: seeded from fc_balances, not the
    # previous partition, yet row for row the same.
    alone = create_warehouse(tmp_path / "alone.duckdb")  # the same contract rows, no marts
    ensure_mart_tables(alone)
    # The features window reads 90 daily partitions: those (the first one seeded), then the day's features
    # with no previous features partition (seeded from fc_balances).
    for d in (day - timedelta(days=n) for n in range(89, -1, -1)):
        if d >= SETTINGS.history_start:
            build_partition(alone, "fc_daily_balances", d, BUILD_AT, SETTINGS)
    build_partition(alone, "fc_underwriting_features", day, BUILD_AT, SETTINGS)
    assert partition(alone, "fc_daily_balances", "day", day) == full_daily
    # The full rebuild computes features a range at a time (window functions), a lone day one day at a time.
    assert same_rows(partition(alone, "fc_underwriting_features", "window_end", day), full_features)
    # And a daily partition with no previous partition at all (seeded) equals the chained one.
    alone.execute("DELETE FROM fc_daily_balances")
    alone.execute("DELETE FROM _fc_mart_partitions")
    build_partition(alone, "fc_daily_balances", day, BUILD_AT, SETTINGS)
    assert partition(alone, "fc_daily_balances", "day", day) == full_daily
    alone.close()


def test_a_late_balance_for_a_past_day_rebuilds_that_day_and_the_following_ones_only(
    warehouse_con: duckdb.DuckDBPyConnection,
) -> None:
    build_marts(warehouse_con, BUILD_AT, SETTINGS, full=True)
    later = BUILD_AT + timedelta(hours=2)
    assert out_of_date_start(warehouse_con, BUILD_DAY, SETTINGS) is None
    assert build_marts(warehouse_con, later, SETTINGS)["fc_daily_balances"] == 0  # nothing to do
    before = {m: build_times(warehouse_con, m) for m in ("fc_daily_balances", "fc_underwriting_features")}
    # A balance with as_of on 2025-03-22, fetched after the build (another writer, a bulk load, a late as_of).
    fetched = later + timedelta(minutes=5)
    warehouse_con.execute(
        "INSERT INTO fc_balances VALUES ('fca_gap', 'cus_1', 'cash', 'usd', TIMESTAMPTZ '2025-03-22 10:00:00+00', "
        "-777, -777, NULL, -7.77, -7.77, NULL, ?)", [fetched])
    assert out_of_date_start(warehouse_con, BUILD_DAY, SETTINGS) == D("2025-03-22")
    rebuilt_at = later + timedelta(minutes=10)
    build_marts(warehouse_con, rebuilt_at, SETTINGS)
    for mart, times in before.items():
        after = build_times(warehouse_con, mart)
        assert {d for d, t in after.items() if t == rebuilt_at} == {d for d in times if d >= D("2025-03-22")}, mart
        assert all(after[d] == t for d, t in times.items() if d < D("2025-03-22")), mart
    day = fetch_dicts(warehouse_con, "SELECT * FROM fc_daily_balances WHERE account_id = 'fca_gap' "
                                     "AND currency = 'usd' AND day = DATE '2025-03-22'")[0]
    assert (day["current_minor"], day["observed"]) == (-777, True)
    carried = fetch_dicts(warehouse_con, "SELECT * FROM fc_daily_balances WHERE account_id = 'fca_gap' "
                                         "AND currency = 'usd' AND day = DATE '2025-03-24'")[0]
    assert (carried["current_minor"], carried["observed"]) == (-777, False)  # carried into the following days
    assert out_of_date_start(warehouse_con, BUILD_DAY, SETTINGS) is None


def test_a_day_built_before_it_ended_is_rebuilt_once_it_is_over(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    build_marts(warehouse_con, BUILD_AT, SETTINGS, full=True)
    tomorrow = BUILD_DAY + timedelta(days=1)
    assert out_of_date_start(warehouse_con, tomorrow, SETTINGS) == BUILD_DAY


def test_carry_forward_stops_after_the_limit_and_restarts_on_a_new_observation(
    warehouse_con: duckdb.DuckDBPyConnection,
) -> None:
    warehouse_con.execute("DELETE FROM fc_balances")
    insert_balances(warehouse_con, [
        ("fca_new", "cash", "usd", "2025-01-10T08:00:00+00:00", 10, 10, None),
        ("fca_new", "cash", "usd", "2025-03-01T08:00:00+00:00", 20, 20, None),
    ], CUSTOMERS)
    settings = HistorySettings(history_start=D("2025-01-01"), carry_forward_days=5)
    build_marts(warehouse_con, BUILD_AT, settings)
    got = dict(warehouse_con.execute("SELECT day, current_minor FROM fc_daily_balances ORDER BY day").fetchall())
    expected = {D("2025-01-10") + timedelta(days=n): 10 for n in range(6)}  # observed + 5 carried days
    expected |= {D("2025-03-01") + timedelta(days=n): 20 for n in range(6)}
    assert got == expected
    # Features still list the account on days it has no value, with honest zero coverage.
    row = fetch_dicts(warehouse_con, "SELECT * FROM fc_underwriting_features WHERE window_end = DATE '2025-02-05' "
                                     "AND window_days = 30")[0]
    assert (row["days_with_value"], row["coverage"], row["avg_daily_balance_minor"]) == (6, 0.2, 10)
    row = fetch_dicts(warehouse_con, "SELECT * FROM fc_underwriting_features WHERE window_end = DATE '2025-02-28' "
                                     "AND window_days = 30")[0]
    assert (row["days_with_value"], row["avg_daily_balance_minor"], row["latest_current_minor"]) == (0, None, 10)


def test_point_in_time_features_ignore_balances_with_a_later_as_of(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    build_marts(warehouse_con, BUILD_AT, SETTINGS, full=True)
    day = D("2025-03-26")
    before = partition(warehouse_con, "fc_underwriting_features", "window_end", day)
    # fca_gap's newest balance as of 2025-03-26 is the 2025-03-25 20:00 one; 2025-03-28 and 31 come later.
    gap = [r for r in fetch_dicts(warehouse_con, "SELECT * FROM fc_underwriting_features WHERE window_end = ? "
                                                 "AND account_id = 'fca_gap' AND currency = 'usd'", [day])]
    assert {(r["latest_current_minor"], r["latest_as_of"]) for r in gap} == {
        (1200, datetime(2025, 3, 25, 20, 0, tzinfo=UTC))}
    assert all(r["staleness_hours"] == pytest.approx(28.0) for r in gap)  # to the end of 2025-03-26
    # fca_gap's eur balance (first seen 2025-03-29) has no row yet on 2025-03-26.
    assert not fetch_dicts(warehouse_con, "SELECT * FROM fc_underwriting_features WHERE window_end = ? "
                                          "AND currency = 'eur'", [day])
    # Balances with a later as_of land (fetched now): that day's partition does not change.
    insert_balances(warehouse_con, [("fca_gap", "cash", "usd", "2025-03-27T01:00:00+00:00", -5, -5, None)], CUSTOMERS)
    build_marts(warehouse_con, BUILD_AT + timedelta(hours=1), SETTINGS, full=True)
    assert same_rows(partition(warehouse_con, "fc_underwriting_features", "window_end", day), before)


def test_a_0_1_0_warehouse_gets_its_marts_rebuilt_and_its_balances_untouched(tmp_path: Path) -> None:
    warehouse = unpack_0_1_0(tmp_path / "wh")
    before = table_rows(warehouse / DUCKDB_FILE_NAME)
    assert before["fc_daily_balances"] and before["fc_underwriting_features"]  # 0.1.0 built them whole
    with Warehouse(warehouse) as wh:  # opening migrates: the old marts are dropped, to be rebuilt
        with wh.connection() as con:
            assert con.execute("SELECT count(*) FROM fc_daily_balances").fetchone() == (0,)
            first = con.execute("SELECT min(as_of) FROM fc_balances").fetchone()[0].date()
            settings = HistorySettings(history_start=first, carry_forward_days=31)
            build_at = datetime.now(UTC)
            assert out_of_date_start(con, build_at.date(), settings) == first
            counts = build_marts(con, build_at, settings)
            assert counts["fc_daily_balances"] > 0 and counts["fc_underwriting_features"] > 0
            assert out_of_date_start(con, build_at.date(), settings) is None
            (views,) = con.execute("SELECT count(*) FROM fc_current_underwriting_features").fetchone()
            assert views == counts["fc_latest_balances"] * 2
        wh.publish(["fc_daily_balances"])
    after = table_rows(warehouse / DUCKDB_FILE_NAME)
    for table in ("fc_balances", "fc_accounts", "fc_balance_refreshes", "fc_events"):
        width = len(before[table][0])  # later migrations append columns (access_stopped_at): old ones keep values
        assert [row[:width] for row in after[table]] == before[table], table
    assert not (warehouse / "parquet").exists()  # the 0.1.0 Parquet files are gone, Iceberg holds the rows
    daily = iceberg_rows(warehouse, "fc_daily_balances")
    assert daily and daily == duckdb_rows(warehouse, "fc_daily_balances")
