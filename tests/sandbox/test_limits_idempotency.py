"""Rate limits (token buckets), restricted keys, and idempotent replays."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import account, customer, sdk


def test_endpoint_bucket_limits_then_429_rate_limit_error(sandbox_factory):
    sb = sandbox_factory(rate_limit_endpoint=3, rate_limit_global=100)
    client = sdk(sb)
    for _ in range(3):
        client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 429
    assert caught.value.error.code == "rate_limit"
    assert caught.value.error.type == "invalid_request_error"
    client.v1.events.list()  # another endpoint has its own bucket
    stats = sb.stats()
    assert stats["rate_limited"] == 1
    assert stats["statuses"]["429"] == 1
    assert stats["requests"]["GET /v1/customers"] == 4


def test_global_bucket_spans_endpoints_and_refresh_ids_share_one_template(sandbox_factory):
    sb = sandbox_factory(rate_limit_endpoint=2, rate_limit_global=3)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account(f"fca_{i}", "cus_A") for i in range(3)]})
    client = sdk(sb)
    client.v1.financial_connections.accounts.refresh("fca_0", {"features": ["balance"]})
    client.v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    with pytest.raises(stripe.RateLimitError):  # per-endpoint: all ids are one endpoint
        client.v1.financial_connections.accounts.refresh("fca_2", {"features": ["balance"]})
    client.v1.customers.list()  # third global token (the 429 took none)
    with pytest.raises(stripe.RateLimitError):
        client.v1.events.list()  # global bucket empty
    stats = sb.stats()
    refreshes = "POST /v1/financial_connections/accounts/{id}/refresh"
    assert stats["requests"][refreshes] == 3
    # Each endpoint's first and last request (a benchmark's breakdown): the refreshes came before the listing.
    first, last = stats["first_request_at_by_endpoint"], stats["last_request_at_by_endpoint"]
    assert first.keys() == last.keys() == {refreshes, "GET /v1/customers", "GET /v1/events"}
    assert stats["first_request_at"] == first[refreshes] <= last[refreshes] <= first["GET /v1/customers"]
    assert last["GET /v1/events"] == stats["last_request_at"]


def test_admin_api_is_neither_limited_nor_counted(sandbox_factory, raw):
    sb = sandbox_factory(rate_limit_endpoint=1, rate_limit_global=1)
    client = raw(sb)
    for _ in range(5):
        assert client.get("/_sandbox/stats").status_code == 200
    assert client.get("/v1/customers").status_code == 200
    stats = client.get("/_sandbox/stats").json()
    assert stats["requests"] == {"GET /v1/customers": 1}
    assert stats["rate_limited"] == 0


def test_restricted_key_without_permission_is_403(sandbox_factory):
    sb = sandbox_factory(restricted_keys={"rk_test_reader": {"customers_read", "events_read",
                                                              "financial_connections_accounts_read"}})
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    reader = sdk(sb, key="rk_test_reader")
    assert reader.v1.customers.list().data[0].id == "cus_A"
    with pytest.raises(stripe.PermissionError) as caught:
        reader.v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    assert caught.value.http_status == 403
    assert "financial_connections_accounts_write" in caught.value.user_message
    assert "rk_test_reader" not in caught.value.http_body


def test_idempotent_replay_and_mismatch(sandbox, raw):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    client = raw(sandbox)
    path = "/v1/financial_connections/accounts/fca_1/refresh"
    headers = {"Idempotency-Key": "key-1"}
    first = client.post(path, data={"features[]": "balance"}, headers=headers)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    sandbox.advance_clock(1)  # completes the refresh: a new request would now see "succeeded"
    replay = client.post(path, data={"features[]": "balance"}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert replay.json()["balance_refresh"]["status"] == "pending"
    assert sandbox.stats()["refreshes_started"] == 1
    mismatch = client.post(path, data={"features[]": "ownership"}, headers=headers)
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        sdk(sandbox).v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "key-1"})


def test_errors_from_the_endpoint_are_replayed_validation_errors_are_not(sandbox, raw):
    sandbox.load_fixtures({"customers": [customer("cus_A")],
                           "accounts": [account("fca_1", "cus_A", status="inactive")]})
    client = raw(sandbox)
    path = "/v1/financial_connections/accounts/fca_1/refresh"
    first = client.post(path, data={"features[]": "balance"}, headers={"Idempotency-Key": "k"})
    again = client.post(path, data={"features[]": "balance"}, headers={"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 400
    assert again.headers["Idempotent-Replayed"] == "true"
    bad = client.post(path, data={"weather": "x"}, headers={"Idempotency-Key": "v"})
    assert bad.status_code == 400
    bad_again = client.post(path, data={"weather": "x"}, headers={"Idempotency-Key": "v"})
    assert "Idempotent-Replayed" not in bad_again.headers
