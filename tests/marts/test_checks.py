"""Each data-quality check passes on the clean hand-made warehouse and fails on a deliberately corrupted table."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets import checks
from assets.checks import (
    AMOUNTS_MATCH_TYPE,
    AS_OF_NOT_IN_FUTURE,
    BALANCES_FRESH,
    CHECKED_TABLES,
    CHECKS,
    CURRENCIES_VALID,
    REFRESH_FAILURE_RATE,
    UNIQUE_KEY,
    DataQualityConfig,
    Thresholds,
    check_failure_rate,
    check_freshness,
    resolve_thresholds,
    table_check_results,
)
from pipelines.marts.build import build_marts
from pipelines.resources import WarehouseResource
from pipelines.settings import SettingsError
from tests.marts.conftest import BUILD_AT, create_warehouse

# Generous staleness so that only the freshness test itself judges freshness (fca_old is 2892 h old).
LENIENT = Thresholds(staleness_hours=3000.0)


def results(con: duckdb.DuckDBPyConnection, table: str, thresholds: Thresholds = LENIENT) -> dict[str, bool]:
    return {r.check_name: r.passed for r in table_check_results(con, table, thresholds, BUILD_AT)}


def without_primary_key(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Recreate a table without constraints, as a hand-made or imported copy would be."""
    con.execute(f"CREATE TABLE {table}_copy AS SELECT * FROM {table}")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {table}_copy RENAME TO {table}")


@pytest.fixture
def built(warehouse_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    build_marts(warehouse_con, BUILD_AT)
    return warehouse_con


@pytest.mark.parametrize("table", list(CHECKED_TABLES))
def test_every_check_passes_on_clean_data(built: duckdb.DuckDBPyConnection, table: str) -> None:
    got = results(built, table)
    assert got and all(got.values()), got


# (table, check, corrupting SQL): each breaks exactly one rule.
CORRUPTIONS = [
    ("fc_balances", UNIQUE_KEY, "INSERT INTO fc_balances SELECT * FROM fc_balances WHERE account_id = 'fca_jpy'"),
    ("fc_balances", CURRENCIES_VALID, "UPDATE fc_balances SET currency = 'USD' WHERE account_id = 'fca_old'"),
    ("fc_balances", AS_OF_NOT_IN_FUTURE,
     "UPDATE fc_balances SET as_of = TIMESTAMPTZ '2025-03-31 12:10:00+00' WHERE account_id = 'fca_old'"),
    ("fc_balances", AMOUNTS_MATCH_TYPE, "UPDATE fc_balances SET used_minor = 1 WHERE account_id = 'fca_jpy'"),
    ("fc_balances", AMOUNTS_MATCH_TYPE, "UPDATE fc_balances SET available_minor = 1 WHERE account_id = 'fca_credit'"),
    ("fc_balances", AMOUNTS_MATCH_TYPE, "UPDATE fc_balances SET balance_type = 'loan' WHERE account_id = 'fca_old'"),
    ("fc_latest_balances", UNIQUE_KEY,
     "INSERT INTO fc_latest_balances SELECT * FROM fc_latest_balances WHERE account_id = 'fca_old'"),
    ("fc_latest_balances", CURRENCIES_VALID,
     "UPDATE fc_latest_balances SET currency = 'undefined' WHERE account_id = 'fca_old'"),
    ("fc_latest_balances", AS_OF_NOT_IN_FUTURE,
     "UPDATE fc_latest_balances SET as_of = TIMESTAMPTZ '2025-04-01 00:00:00+00' WHERE account_id = 'fca_old'"),
    ("fc_latest_balances", AMOUNTS_MATCH_TYPE,
     "UPDATE fc_latest_balances SET available = 1 WHERE account_id = 'fca_credit'"),
    ("fc_daily_balances", UNIQUE_KEY,
     "UPDATE fc_daily_balances SET day = DATE '2025-03-31' WHERE account_id = 'fca_gap' AND day = DATE '2025-03-30'"),
    ("fc_daily_balances", CURRENCIES_VALID,
     "UPDATE fc_daily_balances SET currency = NULL WHERE account_id = 'fca_gap' AND currency = 'eur'"),
    ("fc_daily_balances", AS_OF_NOT_IN_FUTURE,
     "UPDATE fc_daily_balances SET as_of = TIMESTAMPTZ '2030-01-01 00:00:00+00' WHERE account_id = 'fca_gap'"),
    ("fc_daily_balances", AMOUNTS_MATCH_TYPE,
     "UPDATE fc_daily_balances SET used_minor = 5 WHERE account_id = 'fca_old'"),
    ("fc_underwriting_features", UNIQUE_KEY,
     "UPDATE fc_underwriting_features SET window_days = 30 WHERE account_id = 'fca_old'"),
    ("fc_underwriting_features", CURRENCIES_VALID,
     "UPDATE fc_underwriting_features SET currency = 'xyz' WHERE account_id = 'fca_old'"),
    ("fc_customer_liquidity", UNIQUE_KEY, "UPDATE fc_customer_liquidity SET currency = 'usd'"),
    ("fc_customer_liquidity", CURRENCIES_VALID,
     "UPDATE fc_customer_liquidity SET currency = 'eu' WHERE customer_id = 'cus_2'"),
]


@pytest.mark.parametrize(("table", "check", "corruption"), CORRUPTIONS)
def test_a_corrupted_table_fails_exactly_its_check(
    built: duckdb.DuckDBPyConnection, table: str, check: str, corruption: str
) -> None:
    if check == UNIQUE_KEY and table == "fc_balances":
        without_primary_key(built, table)
    built.execute(corruption)
    got = results(built, table)
    assert got.pop(check) is False
    assert all(got.values()), got


def test_failed_results_say_what_they_found(built: duckdb.DuckDBPyConnection) -> None:
    without_primary_key(built, "fc_balances")
    built.execute("INSERT INTO fc_balances SELECT * FROM fc_balances WHERE account_id = 'fca_neg'")  # 8 rows
    unique = next(table_check_results(built, "fc_balances", LENIENT, BUILD_AT))
    assert unique.metadata["duplicated_keys"].value == 8
    assert unique.metadata["rows_involved"].value == 16
    # Counts only: no key (it holds an account id) reaches Dagster's run history.
    assert "sample" not in unique.metadata
    assert not any("fca_" in str(value.value) for value in unique.metadata.values())
    fresh = check_freshness(built, BUILD_AT + timedelta(days=3650), 1.0)
    assert fresh.metadata["stale_balances"].value > 0
    assert not any("fca_" in str(value.value) for value in fresh.metadata.values())


def test_future_as_of_allows_the_clock_skew_allowance(built: duckdb.DuckDBPyConnection) -> None:
    built.execute("UPDATE fc_balances SET as_of = ? WHERE account_id = 'fca_old'", [BUILD_AT + timedelta(seconds=200)])
    assert results(built, "fc_balances", Thresholds(staleness_hours=3000.0, clock_skew_seconds=300.0))[
        AS_OF_NOT_IN_FUTURE]
    assert not results(built, "fc_balances", Thresholds(staleness_hours=3000.0, clock_skew_seconds=100.0))[
        AS_OF_NOT_IN_FUTURE]


def test_freshness_warns_about_stale_active_accounts_only(built: duckdb.DuckDBPyConnection) -> None:
    by_threshold = {}
    for hours in (48.0, 2800.0, 3000.0):
        result = next(r for r in table_check_results(built, "fc_balances", Thresholds(staleness_hours=hours), BUILD_AT)
                      if r.check_name == BALANCES_FRESH)
        assert result.severity == dg.AssetCheckSeverity.WARN
        by_threshold[hours] = (result.passed, result.metadata["stale_balances"].value)
    # At 2025-03-31 12:00, 48 h: fca_gap/eur (50 h), fca_neg (72 h), fca_jpy, fca_long_neg, fca_old; fca_inactive
    # (inactive) is not counted. 2800 h: only fca_old (2892 h).
    assert by_threshold == {48.0: (False, 5), 2800.0: (False, 1), 3000.0: (True, 0)}


def insert_refreshes(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, str | None]]) -> None:
    con.executemany(
        "INSERT INTO fc_balance_refreshes (run_id, account_id, outcome, requested_at, completed_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(run, account, outcome, datetime.fromisoformat(at) if at else None,
          datetime.fromisoformat(at) + timedelta(seconds=5) if at and outcome != "timed_out" else None)
         for run, account, outcome, at in rows],
    )


def test_refresh_failure_rate_of_the_last_run(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    assert check_failure_rate(warehouse_con, 0.25).passed  # no runs yet: nothing to judge
    old_run = "zz_run_old"  # named to sort after the newer run: the time decides, not the id
    insert_refreshes(warehouse_con, [(old_run, f"fca_{i}", "failed", "2025-03-30T06:00:00+00:00") for i in range(4)])
    new_run = "aa_run_new"
    insert_refreshes(warehouse_con, [
        (new_run, "fca_1", "succeeded", "2025-03-31T06:00:00+00:00"),
        (new_run, "fca_2", "succeeded", "2025-03-31T06:00:00+00:00"),
        (new_run, "fca_3", "succeeded", "2025-03-31T06:00:00+00:00"),
        (new_run, "fca_4", "failed", "2025-03-31T06:00:00+00:00"),
        (new_run, "fca_5", "timed_out", "2025-03-31T06:00:00+00:00"),
        (new_run, "fca_6", "skipped_cooldown", None),
        (new_run, "fca_7", "skipped_inactive", None),
    ])
    result = check_failure_rate(warehouse_con, 0.25)  # 2 of 5 attempted = 0.4
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert result.metadata["run_id"].value == new_run
    assert (result.metadata["attempted"].value, result.metadata["failed"].value) == (5, 2)
    assert result.metadata["failure_rate"].value == pytest.approx(0.4)
    assert check_failure_rate(warehouse_con, 0.4).passed


def test_thresholds_come_from_config_then_environment_then_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FC_BALANCES_STALENESS_HOURS", raising=False)
    monkeypatch.delenv("FC_BALANCES_MAX_FAILURE_RATE", raising=False)
    monkeypatch.delenv("FC_BALANCES_CLOCK_SKEW_SECONDS", raising=False)
    assert resolve_thresholds(DataQualityConfig()) == Thresholds(48.0, 0.25, 300.0)
    monkeypatch.setenv("FC_BALANCES_STALENESS_HOURS", "12")
    monkeypatch.setenv("FC_BALANCES_MAX_FAILURE_RATE", "0")
    assert resolve_thresholds(DataQualityConfig()) == Thresholds(12.0, 0.0, 300.0)
    assert resolve_thresholds(DataQualityConfig(staleness_hours=6.0)).staleness_hours == 6.0
    monkeypatch.setenv("FC_BALANCES_MAX_FAILURE_RATE", "1.5")
    with pytest.raises(SettingsError, match="FC_BALANCES_MAX_FAILURE_RATE must be between 0 and 1"):
        resolve_thresholds(DataQualityConfig())
    monkeypatch.setenv("FC_BALANCES_STALENESS_HOURS", "two days")
    with pytest.raises(SettingsError, match="FC_BALANCES_STALENESS_HOURS must be a number"):
        resolve_thresholds(DataQualityConfig())


def test_checks_run_in_dagster_against_the_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fc_balances's and fc_balance_refreshes's checks as Dagster runs them (without materializing the tables)."""
    monkeypatch.setenv("FC_BALANCES_STALENESS_HOURS", str(24 * 365 * 100))  # the history is from 2025
    con = create_warehouse(tmp_path / "fc_balances.duckdb")
    con.execute("UPDATE fc_balances SET used_minor = 7 WHERE account_id = 'fca_gap'")
    con.close()
    result = dg.materialize(
        [dg.AssetSpec("fc_balances"), dg.AssetSpec("fc_balance_refreshes"), *CHECKS],
        selection=dg.AssetSelection.checks_for_assets("fc_balances", "fc_balance_refreshes"),
        resources={"warehouse": WarehouseResource(directory=str(tmp_path))},
        raise_on_error=False,
    )
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert {key: e.passed for key, e in evaluations.items()} == {
        ("fc_balances", UNIQUE_KEY): True,
        ("fc_balances", CURRENCIES_VALID): True,
        ("fc_balances", AS_OF_NOT_IN_FUTURE): True,
        ("fc_balances", AMOUNTS_MATCH_TYPE): False,
        ("fc_balances", BALANCES_FRESH): True,
        ("fc_balance_refreshes", REFRESH_FAILURE_RATE): True,
    }
    assert evaluations[("fc_balances", AMOUNTS_MATCH_TYPE)].severity == dg.AssetCheckSeverity.ERROR
    assert evaluations[("fc_balances", AMOUNTS_MATCH_TYPE)].metadata["cash_with_used"].value == 5  # fca_gap's rows
    assert not result.success  # a blocking ERROR fails the check step, so nothing downstream would run


def chunks_of_about_ten_days(built: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unique-key chunks of about ten days' rows; a day with more rows than that forms a chunk alone."""
    ten_days = built.execute("SELECT count(*) FROM fc_daily_balances WHERE day BETWEEN '2025-01-01' AND '2025-01-10'"
                             ).fetchone()[0]
    monkeypatch.setattr(checks, "UNIQUE_KEY_CHUNK_ROWS", ten_days)


def test_keys_are_grouped_by_text_only_where_a_hash_repeats(
    built: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks_of_about_ten_days(built, monkeypatch)
    built.execute("INSERT INTO fc_daily_balances SELECT * FROM fc_daily_balances WHERE day = '2025-02-10'")
    template = checks._template
    exact: list[object] = []

    def spied(name: str, table: str, days: checks.Days) -> tuple[str, dict]:
        if name == "unique_key":
            exact.append(days)
        return template(name, table, days)

    monkeypatch.setattr(checks, "_template", spied)
    days = (date(2024, 12, 1), date(2025, 3, 29))
    unique = next(table_check_results(built, "fc_daily_balances", LENIENT, BUILD_AT, days=days))
    assert unique.passed is False
    # Only the chunk holding the repeated day was grouped by the key itself.
    assert len(exact) == 1 and exact[0][0] <= date(2025, 2, 10) <= exact[0][1]

    # A hash that repeats without a repeated key (a collision, forced here) is settled by the exact pass.
    built.execute("DELETE FROM fc_daily_balances WHERE rowid IN (SELECT max(rowid) FROM fc_daily_balances "
                  "WHERE day = '2025-02-10' GROUP BY account_id, currency)")

    def colliding(name: str, table: str, days: checks.Days) -> tuple[str, dict]:
        if name == "repeated_key_hashes":
            return "SELECT 1 AS repeated_hashes", {}
        return spied(name, table, days)

    exact.clear()
    monkeypatch.setattr(checks, "_template", colliding)
    unique = next(table_check_results(built, "fc_daily_balances", LENIENT, BUILD_AT, days=days))
    assert unique.passed is True and unique.metadata["duplicated_keys"].value == 0
    assert len(exact) == len(checks._day_chunks(built, "fc_daily_balances", days)) > 1


def test_a_long_range_is_checked_a_few_days_at_a_time_with_the_same_counts(
    built: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks_of_about_ten_days(built, monkeypatch)
    # Duplicates on days in two different chunks of a 120-day range, plus one outside the range.
    for day in ("2025-01-10", "2025-03-20", "2025-03-30"):
        built.execute("INSERT INTO fc_daily_balances SELECT * FROM fc_daily_balances WHERE day = ?", [day])
    per_day = built.execute("SELECT count(*) FROM fc_daily_balances WHERE day IN ('2025-01-10', '2025-03-20')"
                            ).fetchone()[0] // 2
    outside = built.execute("SELECT count(*) FROM fc_daily_balances WHERE day = '2025-03-30'").fetchone()[0]
    assert per_day > 0 and outside > 0
    days = (date(2024, 12, 1), date(2025, 3, 29))  # 2025-03-30 lies outside
    chunks = checks._day_chunks(built, "fc_daily_balances", days)
    assert len(chunks) >= 10 and chunks[0][0] >= days[0] and chunks[-1][1] <= days[1]
    assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(chunks))
    unique = next(table_check_results(built, "fc_daily_balances", LENIENT, BUILD_AT, days=days))
    assert unique.passed is False
    assert unique.metadata["duplicated_keys"].value == per_day
    assert unique.metadata["rows_involved"].value == 2 * per_day
