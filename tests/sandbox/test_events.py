"""Events: filtering by type (wildcard), types[], created ranges, retrieval, and paging new events."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import account, customer, sdk


@pytest.fixture
def with_events(sandbox):
    sandbox.update_settings(rate_limit=False)
    sandbox.load_fixtures({"customers": [customer("cus_A")],
                           "accounts": [account(f"fca_{i}", "cus_A") for i in range(6)]})
    client = sdk(sandbox)
    for i in range(4):
        client.v1.financial_connections.accounts.refresh(f"fca_{i}", {"features": ["balance"]})
    sandbox.advance_clock(1)
    client.v1.financial_connections.accounts.disconnect("fca_5")
    sandbox.advance_clock(100)
    client.v1.customers.create({"email": "late@example.com"})
    return sandbox


def test_type_exact_wildcard_and_types(with_events):
    events = sdk(with_events).v1.events
    assert len(events.list({"type": "financial_connections.account.refreshed_balance"}).data) == 4
    assert len(events.list({"type": "financial_connections.account.*"}).data) == 5
    assert len(events.list({"type": "*"}).data) == 6
    assert [e.type for e in events.list({"type": "customer.*"}).data] == ["customer.created"]
    both = events.list({"types": ["customer.created", "financial_connections.account.disconnected"]})
    assert sorted(e.type for e in both.data) == ["customer.created", "financial_connections.account.disconnected"]
    assert events.list({"type": "no.such.type"}).data == []


def test_type_with_types_and_too_many_types_are_400(with_events):
    events = sdk(with_events).v1.events
    with pytest.raises(stripe.InvalidRequestError):
        events.list({"type": "customer.created", "types": ["customer.created"]})
    with pytest.raises(stripe.InvalidRequestError):
        events.list({"types": [f"t{i}" for i in range(21)]})


def test_created_range_and_paging(with_events):
    events = sdk(with_events).v1.events
    everything = events.list({"limit": 100}).data
    assert [e.created for e in everything] == sorted((e.created for e in everything), reverse=True)
    newest = everything[0].created
    recent = events.list({"created": {"gte": newest}})
    assert [e.type for e in recent.data] == ["customer.created"]
    older = events.list({"created": {"lt": newest}, "limit": 2})
    assert len(list(older.auto_paging_iter())) == 5
    one = events.retrieve(everything[2].id)
    assert one.id == everything[2].id and one.type == everything[2].type


def test_ending_before_the_newest_seen_returns_only_newer_events(with_events):
    client = sdk(with_events)
    seen = client.v1.events.list({"type": "financial_connections.account.*", "limit": 1}).data[0]
    assert client.v1.events.list({"type": "financial_connections.account.*", "ending_before": seen.id}).data == []
    # New events in the same second still sort after the cursor (ids grow with creation order).
    for i in range(4):
        client.v1.financial_connections.accounts.disconnect(f"fca_{i}")
    newer = client.v1.events.list({"type": "financial_connections.account.*", "ending_before": seen.id})
    assert sorted(e.data.object.id for e in newer.data) == ["fca_0", "fca_1", "fca_2", "fca_3"]
