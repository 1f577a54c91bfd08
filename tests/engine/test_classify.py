"""Which accounts the engine refreshes, awaits or skips, decided from the account as listed."""

from __future__ import annotations

from pipelines.stripe_fc.client import default_limits
from pipelines.stripe_fc.engine import classify

NOW = 1_764_100_000.0


def account(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "fca_1", "status": "active", "permissions": ["balances"], "balance_refresh": None}
    base.update(fields)
    return base


def test_never_refreshed_active_account_is_refreshed() -> None:
    assert classify(account(), NOW) == "refresh"


def test_inactive_and_disconnected_are_skipped_inactive() -> None:
    assert classify(account(status="inactive"), NOW) == "skipped_inactive"
    assert classify(account(status="disconnected"), NOW) == "skipped_inactive"


def test_missing_balances_permission() -> None:
    assert classify(account(permissions=["payment_method"]), NOW) == "skipped_no_permission"
    assert classify(account(permissions=None), NOW) == "skipped_no_permission"


def test_pending_refresh_is_awaited_not_requested_again() -> None:
    refresh = {"status": "pending", "last_attempted_at": NOW - 5, "next_refresh_available_at": None}
    assert classify(account(balance_refresh=refresh), NOW) == "await"


def test_cooldown_until_next_refresh_available_at() -> None:
    later = {"status": "succeeded", "last_attempted_at": NOW - 60, "next_refresh_available_at": NOW + 1}
    passed = {"status": "failed", "last_attempted_at": NOW - 60, "next_refresh_available_at": NOW - 1}
    assert classify(account(balance_refresh=later), NOW) == "skipped_cooldown"
    assert classify(account(balance_refresh=passed), NOW) == "refresh"


def test_default_limits_follow_the_key_mode() -> None:
    assert default_limits("sk_test_x") == (25.0, 25.0)
    assert default_limits("rk_test_x") == (25.0, 25.0)
    assert default_limits("sk_live_x") == (100.0, 25.0)
    assert default_limits("anything_else") == (100.0, 25.0)
