"""fc_account_health end to end: sandbox fixtures, real ingest runs, real events, a real Dagster materialization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.checks import ACCOUNTS_TO_RELINK
from assets.marts import MART_ASSETS
from pipelines.contract.values import RELINK_REASONS
from pipelines.marts.health import health_settings
from pipelines.resources import WarehouseResource
from pipelines.settings import SettingsError
from tests.events.helpers import published_rows
from tests.events.test_sensor import drain, tick
from tests.integration.helpers import query, run_ingest

(HEALTH_ASSET,) = [a for a in MART_ASSETS if a.key.to_user_string() == "fc_account_health"]
T0 = 1_764_000_000
DAY = 86_400
BALANCE = {"type": "cash", "current": {"usd": 1000}, "cash": {"available": {"usd": 900}}}


def _account(account_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": account_id, "customer": "cus_A", "category": "cash", "subcategory": "checking",
            "status": "active", "permissions": ["balances", "payment_method"], "created": T0,
            "account_numbers": [{"status": "transactable"}],
            "refresh_outcomes": [{"status": "succeeded", "balance": BALANCE}]}
    return {**base, **fields}


def _fixtures(now: int) -> dict[str, Any]:
    return {"customers": [{"id": "cus_A", "email": "a@example.com", "created": T0}], "accounts": [
        _account("fca_ok"),
        _account("fca_soon", status_details={"active": {"expected_deactivation_date": now + 5 * DAY}}),
        _account("fca_gone", status="disconnected", refresh_outcomes=None),
        _account("fca_expired", account_numbers=[{"status": "expired"}, {"status": "deactivated"}]),
        _account("fca_frozen", account_numbers=[{"status": "frozen"}]),  # a status Stripe adds later
        _account("fca_failing", refresh_outcomes=[{"status": "failed"}]),
        _account("fca_noperm", permissions=["payment_method"], refresh_outcomes=None),
        _account("fca_later", schedule=[{"at": now + 1000, "event": "upcoming_deactivation",
                                         "expected_deactivation_date": now + 3 * DAY}]),
    ]}


def build_health(warehouse: Path) -> dg.ExecuteInProcessResult:
    result = dg.materialize([HEALTH_ASSET], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result


def reasons(warehouse: Path) -> dict[str, tuple[Any, ...]]:
    rows = query(warehouse, "SELECT account_id, relink_reason, account_numbers_status, consecutive_failed_refreshes, "
                            "days_with_balance_30d, last_successful_refresh_at IS NOT NULL FROM fc_account_health")
    return {row[0]: row[1:] for row in rows}


@pytest.mark.timeout(300)
def test_each_bad_account_gets_its_reason_and_the_healthy_one_none(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_cooldown=0.0)  # a refresh every run, so failures can repeat
    now = int(sandbox.now())
    sandbox.load_fixtures(_fixtures(now))
    warehouse = tmp_path / "wh"
    for _ in range(3):
        assert run_ingest(sandbox, warehouse).success

    result = build_health(warehouse)
    got = reasons(warehouse)
    assert got == {
        "fca_ok": (None, "transactable", 0, 1, True),
        "fca_soon": ("deactivating_soon", "transactable", 0, 1, True),
        "fca_gone": ("disconnected", "transactable", 0, 0, False),
        "fca_expired": ("numbers_not_transactable", "expired", 0, 1, True),
        "fca_frozen": ("numbers_not_transactable", "frozen", 0, 1, True),  # stored as sent, not rejected
        "fca_failing": ("refresh_failing", "transactable", 3, 0, False),
        "fca_noperm": ("no_balance_permission", "transactable", 0, 0, False),
        "fca_later": (None, "transactable", 0, 1, True),  # nothing said yet
    }
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == ACCOUNTS_TO_RELINK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    counts = {name: value.value for name, value in check.metadata.items()}
    assert counts == {"accounts_to_relink": 6, "disconnected": 1, "inactive": 0, "numbers_not_transactable": 2,
                      "deactivating_soon": 1, "refresh_failing": 1, "no_balance_permission": 1}
    assert set(counts) - {"accounts_to_relink"} == set(RELINK_REASONS)

    # Stripe announces fca_later's deactivation: the event alone changes its health, with no refresh.
    refreshes = sandbox.stats()["refreshes_started"]
    sandbox.advance_clock(1001)
    tick(sandbox, warehouse, None)
    drain(warehouse)
    build_health(warehouse)
    assert reasons(warehouse)["fca_later"][0] == "deactivating_soon"
    assert sandbox.stats()["refreshes_started"] == refreshes
    published = published_rows(warehouse, "fc_account_health", "account_id", "account_id")
    assert len(published) == 8  # published like the other marts


@pytest.mark.timeout(300)
def test_the_thresholds_come_from_the_settings(sandbox_factory, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = sandbox_factory(refresh_cooldown=0.0)
    sandbox.load_fixtures(_fixtures(int(sandbox.now())))
    warehouse = tmp_path / "wh"
    assert run_ingest(sandbox, warehouse).success  # one failure for fca_failing
    monkeypatch.setenv("FC_BALANCES_DEACTIVATION_WARNING_DAYS", "2")  # fca_soon's 5 days are not soon now
    monkeypatch.setenv("FC_BALANCES_REFRESH_FAILURES", "1")
    build_health(warehouse)
    got = reasons(warehouse)
    assert got["fca_soon"][0] is None
    assert got["fca_failing"][:3] == ("refresh_failing", "transactable", 1)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FC_BALANCES_DEACTIVATION_WARNING_DAYS", "two weeks", "must be a whole number of 0 or more, got 'two weeks'"),
    ("FC_BALANCES_DEACTIVATION_WARNING_DAYS", "-1", "must be a whole number of 0 or more, got '-1'"),
    ("FC_BALANCES_REFRESH_FAILURES", "0", "must be a whole number of 1 or more, got '0'"),
])
def test_a_bad_setting_is_one_line_naming_it(name: str, value: str, message: str) -> None:
    assert health_settings({}).deactivation_warning_days == 14 and health_settings({}).refresh_failures == 3
    with pytest.raises(SettingsError) as raised:
        health_settings({name: value})
    assert str(raised.value) == f"{name} {message}"
