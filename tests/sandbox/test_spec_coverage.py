"""Every operation and error path, each response checked against Stripe's vendored OpenAPI spec."""

from __future__ import annotations

import contextlib
import json

import httpx

from tests.sandbox.conftest import account, cash_balance, customer
from tests.sandbox.spec_check import check_response, operation_key

ACCOUNTS = "/v1/financial_connections/accounts"
A = "/v1/financial_connections/accounts/{account}"


def _problems(sandbox) -> list[str]:
    problems: list[str] = []
    for method, path, status, body in sandbox.server.recorded:
        problems += check_response(method, path, status, body)
    return problems


def test_the_checker_catches_what_the_issue_lists():
    """The checker itself: each difference the issue names is reported (so a passing check means something)."""
    base = {"id": "fca_1", "object": "financial_connections.account", "category": "cash", "created": 1,
            "institution_name": "Bank", "livemode": False, "status": "active", "subcategory": "checking",
            "supported_payment_method_types": [], "account_holder": {"customer": "cus_A", "type": "customer"}}
    path = f"{ACCOUNTS}/fca_1"
    assert check_response("GET", path, 200, json.dumps(base).encode()) == []
    bad_bodies = [
        {**base, "account_holder": {"account": None, "customer": "cus_A", "type": "customer"}},
        {**base, "balance": {"as_of": 1, "current": {"usd": 1}, "type": "cash", "cash": None}},
        {**base, "balance": {"as_of": 1, "current": {"usd": 1}, "type": "cash", "credit": None,
                             "cash": {"available": None}}},
        {**base, "status_details": None},
        {**base, "status_details": {"inactive": {"action": "relink_required"}}},
        {**base, "status": "frozen"},
        {**base, "object": "account"},
        {**base, "invented": 1},
        {key: value for key, value in base.items() if key != "institution_name"},
    ]
    for body in bad_bodies:
        assert check_response("GET", path, 200, json.dumps(body).encode()), body
    error = {"error": {"type": "invalid_request_error", "message": "m", "code": None, "param": None}}
    assert check_response("GET", path, 404, json.dumps(error).encode())
    event = {"id": "evt_1", "object": "event", "api_version": "x", "created": 1, "livemode": False,
             "pending_webhooks": 0, "request": None, "type": "financial_connections.account.refreshed_balance",
             "data": {"object": base, "previous_attributes": None}}
    assert check_response("GET", "/v1/events/evt_1", 200, json.dumps(event).encode())
    event["data"] = {"object": base}
    assert check_response("GET", "/v1/events/evt_1", 200, json.dumps(event).encode()) == []


def test_every_operation_and_error_path_answers_as_the_spec_says(sandbox_factory):
    sb = sandbox_factory(restricted_keys={"rk_test_read": ["customers_read"]}, rate_limit=False)
    sb.load_fixtures({
        "customers": [customer("cus_A", name="Ada"), customer("cus_B")],
        "accounts": [
            account("fca_1", "cus_A", balance=cash_balance(100, as_of=1_764_000_000),
                    permissions=["balances", "ownership", "transactions"]),
            account("fca_credit", "cus_A", category="credit", subcategory="credit_card",
                    balance={"as_of": 1_764_000_000, "type": "credit", "current": {"usd": -9}}),
            account("fca_off", "cus_B", status="inactive"),
            account("fca_bye", "cus_B"),
        ],
    })
    http = httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.api_key}"}, timeout=10)
    with http:
        get, post = http.get, http.post
        get("/v1/customers", params={"limit": 1, "expand[]": "data.tax"})
        get("/v1/customers", params={"limit": 0})
        get("/v1/customers", params={"starting_after": "cus_gone"})
        get("/v1/customers", params={"test_clock": "clock_1", "email": "x@example.com"})
        post("/v1/customers", data={"email": "new@example.com", "business_name": "B", "expand[]": "tax"})
        post("/v1/customers", data={"nope": "1"})
        get("/v1/customers/cus_A", params={"expand[]": "sources"})
        get("/v1/customers/cus_missing")
        get(ACCOUNTS, params={"expand[]": "data.account_holder.customer"})
        get(ACCOUNTS, params={"account_holder[customer]": "cus_A", "session": "fcsess_1"})
        get(f"{ACCOUNTS}/fca_1", params={"expand[]": ["account_holder.customer", "balance"]})
        get(f"{ACCOUNTS}/fca_credit")
        get(f"{ACCOUNTS}/fca_1", params={"expand[]": "last4"})
        get(f"{ACCOUNTS}/fca_missing")
        post(f"{ACCOUNTS}/fca_1/refresh", data={"features[]": ["balance", "ownership"]})
        post(f"{ACCOUNTS}/fca_1/refresh", data={"features[]": "balance"})  # pending: answered with the account
        post(f"{ACCOUNTS}/fca_1/refresh", data={})
        post(f"{ACCOUNTS}/fca_off/refresh", data={"features[]": "balance"})
        post(f"{ACCOUNTS}/fca_credit/refresh", data={"features[]": "ownership"})
        post(f"{ACCOUNTS}/fca_missing/refresh", data={"features[]": "balance"})
        post(f"{ACCOUNTS}/fca_1/subscribe", data={"features[]": "transactions"})
        post(f"{ACCOUNTS}/fca_1/subscribe", data={"features[]": "balance"})
        post(f"{ACCOUNTS}/fca_off/subscribe", data={"features[]": "transactions"})
        sb.advance_clock(5)
        post(f"{ACCOUNTS}/fca_1/refresh", data={"features[]": "balance"})  # too soon
        post(f"{ACCOUNTS}/fca_1/unsubscribe", data={"features[]": "transactions"})
        post(f"{ACCOUNTS}/fca_1/unsubscribe", data={})
        ownership = get(f"{ACCOUNTS}/fca_1").json()["ownership"]
        get(f"{ACCOUNTS}/fca_1", params={"expand[]": "ownership"})
        get(f"{ACCOUNTS}/fca_1/owners", params={"ownership": ownership, "limit": 1})
        get(f"{ACCOUNTS}/fca_1/owners")
        get(f"{ACCOUNTS}/fca_credit/owners", params={"ownership": ownership})
        post(f"{ACCOUNTS}/fca_bye/disconnect")
        post(f"{ACCOUNTS}/fca_bye/disconnect")
        post(f"{ACCOUNTS}/fca_missing/disconnect")
        events = get("/v1/events", params={"limit": 100}).json()["data"]
        get("/v1/events", params={"type": "financial_connections.account.*", "delivery_success": "true"})
        get("/v1/events", params={"types[]": "customer.created", "limit": 1000})
        get(f"/v1/events/{events[0]['id']}")
        get("/v1/events/evt_missing")
        get("/v1/nothing_here")
        http.get("/v1/customers", headers={"Authorization": "Bearer sk_test_wrong"})
        http.get(ACCOUNTS, headers={"Authorization": "Bearer rk_test_read"})
        key = {"Idempotency-Key": "k1"}
        post("/v1/customers", data={"email": "i@example.com"}, headers=key)
        post("/v1/customers", data={"email": "other@example.com"}, headers=key)
        sb.update_settings(rate_limit=True, rate_limit_global=1.0, rate_limit_endpoint=1.0)
        for _ in range(3):
            get("/v1/customers")
        sb.update_settings(rate_limit=False, fault_rate=1.0, fault_slow_seconds=0.0)
        for _ in range(12):
            with contextlib.suppress(httpx.TransportError):  # a dropped connection has no body to check
                get("/v1/customers")
    assert {e["type"] for e in events} >= {"customer.created", "financial_connections.account.refreshed_balance",
                                           "financial_connections.account.refreshed_ownership",
                                           "financial_connections.account.refreshed_transactions",
                                           "financial_connections.account.disconnected"}
    seen = {operation_key(method, path, status) for method, path, status, _ in sb.server.recorded}
    expected = {
        ("GET", "/v1/customers", 200), ("GET", "/v1/customers", 400), ("GET", "/v1/customers", 401),
        ("GET", "/v1/customers", 429), ("GET", "/v1/customers", 500), ("GET", "/v1/customers", 503),
        ("POST", "/v1/customers", 200), ("POST", "/v1/customers", 400),
        ("GET", "/v1/customers/{customer}", 200), ("GET", "/v1/customers/{customer}", 404),
        ("GET", ACCOUNTS, 200), ("GET", ACCOUNTS, 400), ("GET", ACCOUNTS, 403),
        ("GET", A, 200), ("GET", A, 400), ("GET", A, 404),
        ("POST", f"{A}/refresh", 200), ("POST", f"{A}/refresh", 400), ("POST", f"{A}/refresh", 404),
        ("POST", f"{A}/subscribe", 200), ("POST", f"{A}/subscribe", 400),
        ("POST", f"{A}/unsubscribe", 200), ("POST", f"{A}/unsubscribe", 400),
        ("GET", f"{A}/owners", 200), ("GET", f"{A}/owners", 400), ("GET", f"{A}/owners", 404),
        ("POST", f"{A}/disconnect", 200), ("POST", f"{A}/disconnect", 404),
        ("GET", "/v1/events", 200), ("GET", "/v1/events", 400),
        ("GET", "/v1/events/{id}", 200), ("GET", "/v1/events/{id}", 404),
        ("GET", "(unknown URL)", 404),
    }
    assert expected <= seen, sorted(expected - seen)
    assert _problems(sb) == []
