"""Injected faults and webhook delivery with signatures the SDK verifies."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
import stripe

from tests.sandbox.conftest import account, customer, sdk

SECRET = "whsec_test_secret_for_sandbox"


def test_seeded_fault_mix_on_the_wire(sandbox_factory, raw):
    sb = sandbox_factory(fault_rate=1.0, fault_slow_seconds=0.01, rate_limit=False)
    client = raw(sb)
    seen: Counter[str] = Counter()
    for _ in range(60):
        try:
            response = client.get("/v1/customers")
        except httpx.TransportError:
            seen["dropped"] += 1
            continue
        seen[str(response.status_code)] += 1
        if response.status_code == 429:
            assert response.headers["Stripe-Should-Retry"] == "true"
            assert response.json()["error"]["code"] == "lock_timeout"
        if response.status_code in (500, 503):
            assert response.json()["error"]["type"] == "api_error"
    assert {"500", "503", "429", "200", "dropped"} <= set(seen)  # 200s come from slow responses
    stats = sb.stats()
    assert stats["rate_limited"] == 0  # injected 429s are not the limiter's
    assert stats["faults"]["dropped"] == seen["dropped"]
    assert sum(stats["faults"].values()) == 60


def test_sdk_with_retries_gets_through_faults(sandbox_factory, monkeypatch):
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)  # quick backoff for the test
    monkeypatch.setattr(stripe._http_client.HTTPClient, "MAX_DELAY", 0.05)
    sb = sandbox_factory(fault_rate=0.3, fault_slow_seconds=0.01, rate_limit=False)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account(f"fca_{i}", "cus_A") for i in range(15)]})
    client = sdk(sb, retries=6)
    for i in range(15):
        assert client.v1.financial_connections.accounts.refresh(
            f"fca_{i}", {"features": ["balance"]}).balance_refresh.status == "pending"
        assert client.v1.customers.retrieve("cus_A").id == "cus_A"
    stats = sb.stats()
    assert sum(stats["faults"].values()) > 0
    assert stats["refreshes_started"] == 15  # retried POSTs were replayed, never refreshed twice


def test_webhooks_are_signed_and_verified_by_the_sdk(sandbox_factory, receiver):
    endpoint = receiver()
    sb = sandbox_factory(webhook_url=endpoint.url, webhook_secret=SECRET, clock_offset=-5 * 86_400)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    sdk(sb).v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    sdk(sb).v1.financial_connections.accounts.disconnect("fca_1")
    endpoint.wait_for(2)
    types = []
    for body, header in endpoint.received:
        event = stripe.Webhook.construct_event(body.decode(), header, SECRET)
        types.append(event.type)
        assert event.data.object.id == "fca_1"
        assert event.pending_webhooks == 1
    assert sorted(types) == ["financial_connections.account.disconnected",
                             "financial_connections.account.refreshed_balance"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(endpoint.received[0][0].decode(), endpoint.received[0][1], "whsec_other")
    deadline = time.monotonic() + 10  # the sandbox counts a delivery once it has read the 2xx: a moment later
    while sb.stats()["webhooks"]["delivered"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sb.stats()["webhooks"]["delivered"] == 2


def test_webhook_delivery_retries_after_500(sandbox_factory, receiver):
    endpoint = receiver(fail_first=2)
    sb = sandbox_factory(webhook_url=endpoint.url, webhook_secret=SECRET, webhook_retry_base=0.02)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    sdk(sb).v1.customers.create({"email": "w@example.com"})
    endpoint.wait_for(1)
    assert endpoint.attempts == 3
    event = stripe.Webhook.construct_event(endpoint.received[0][0].decode(), endpoint.received[0][1], SECRET)
    assert event.type == "customer.created"
    assert json.loads(endpoint.received[0][0])["data"]["object"]["email"] == "w@example.com"
    deadline = time.monotonic() + 10  # the sandbox counts a delivery once it has read the 2xx: a moment later
    while sb.stats()["webhooks"]["delivered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    webhooks = sb.stats()["webhooks"]
    assert webhooks["failed_attempts"] == 2 and webhooks["delivered"] == 1
