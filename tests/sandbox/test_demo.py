"""Demo data: realistic shape, deterministic from the seed."""

from __future__ import annotations

from collections import Counter

from tests.sandbox.conftest import sdk


def _all_accounts(sb) -> list[dict]:
    client = sdk(sb)
    return [a.to_dict() for a in client.v1.financial_connections.accounts.list({"limit": 100}).auto_paging_iter()]


def test_demo_data_shape(sandbox_factory):
    sb = sandbox_factory(demo_customers=400, rate_limit=False)
    accounts = _all_accounts(sb)
    customers = {c.id for c in sdk(sb).v1.customers.list({"limit": 100}).auto_paging_iter()}
    assert len(customers) == 400
    assert 500 < len(accounts) < 1200
    assert len({a["account_holder"]["customer"] for a in accounts}) < 400  # some customers have none
    assert {a["category"] for a in accounts} >= {"cash", "credit"}
    assert {a["subcategory"] for a in accounts} >= {"checking", "savings", "credit_card", "line_of_credit",
                                                    "mortgage"}
    statuses = Counter(a["status"] for a in accounts)
    assert statuses["active"] > 0.8 * len(accounts) and statuses["inactive"] and statuses["disconnected"]
    assert any("balances" not in a["permissions"] for a in accounts)
    balances = [a for a in accounts if a["balance"]]
    currencies = Counter(c for a in balances for c in a["balance"]["current"])
    assert currencies.most_common(1)[0][0] == "usd"
    assert {"eur", "gbp", "jpy"} <= set(currencies)
    assert any(len(a["balance"]["current"]) == 2 for a in balances) or len(balances) < 300
    # Only `current` known: the hash named by type is still sent, with its amounts null; the other is absent.
    only_current = [a["balance"] for a in balances
                    if a["balance"].get(a["balance"]["type"]) in ({"available": None}, {"used": None})]
    assert only_current
    assert all(("credit" if b["type"] == "cash" else "cash") not in b for b in (a["balance"] for a in balances))
    cash = [v for a in balances if a["balance"]["type"] == "cash" for v in a["balance"]["current"].values()]
    credit = [v for a in balances if a["balance"]["type"] == "credit" for v in a["balance"]["current"].values()]
    assert sum(v > 0 for v in cash) > 0.9 * len(cash)
    assert sum(v < 0 for v in credit) > 0.9 * len(credit)
    for a in balances:
        if a["balance"]["type"] == "credit" and a["balance"]["credit"]["used"] is not None:
            assert a["balance"]["credit"]["used"] == a["balance"]["current"]
    now = sb.now()
    refreshed = [a["balance_refresh"] for a in accounts if a["balance_refresh"]]
    assert any(r["next_refresh_available_at"] < now for r in refreshed)
    assert any(r["next_refresh_available_at"] > now for r in refreshed)  # a few in cooldown


def test_demo_refreshes_mostly_succeed_and_ids_are_deterministic(sandbox_factory):
    first = sandbox_factory(demo_customers=150, rate_limit=False, seed=5)
    second = sandbox_factory(demo_customers=150, rate_limit=False, seed=5)
    accounts = _all_accounts(first)
    assert [a["id"] for a in accounts] == [a["id"] for a in _all_accounts(second)]
    client = sdk(first)
    eligible = [a for a in accounts if a["status"] == "active" and "balances" in a["permissions"]
                and (a["balance_refresh"] is None or a["balance_refresh"]["next_refresh_available_at"] < first.now())]
    for a in eligible:
        client.v1.financial_connections.accounts.refresh(a["id"], {"features": ["balance"]})
    first.advance_clock(5)
    outcomes = Counter(e.data.object.balance_refresh.status for e in client.v1.events.list(
        {"type": "financial_connections.account.refreshed_balance", "limit": 100}).auto_paging_iter())
    assert sum(outcomes.values()) == len(eligible)
    assert 0.02 < outcomes["failed"] / len(eligible) < 0.3
