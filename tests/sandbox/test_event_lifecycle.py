"""Events as Stripe keeps them: 30-day expiry, account lifecycle events, and pending_webhooks."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_sandbox.events import EVENT_TTL_SECONDS, EventStore
from stripe_sandbox.ids import IdFactory
from tests.sandbox.conftest import account, customer, sdk

ACCOUNT_EVENT = "financial_connections.account."


def test_event_store_expiry_boundary_is_exact():
    now = [1_764_000_000.0]
    store = EventStore(IdFactory(1), lambda: now[0])
    old = store.emit("customer.created", "{}", None, None, None, 1_764_000_000, False, 0)
    new = store.emit("customer.created", "{}", None, None, None, 1_764_000_001, False, 0)
    now[0] = 1_764_000_000 + EVENT_TTL_SECONDS - 0.001
    assert store.expire() == 0 and old.id in store.events
    now[0] = 1_764_000_000 + EVENT_TTL_SECONDS  # created + 30 days: gone from this instant
    assert store.expire() == 1
    assert old.id not in store.events and store.keys == [new.key] and store.by_type["customer.created"] == [new.key]
    now[0] += 1
    assert store.expire() == 1 and store.keys == [] and store.by_type == {}


def test_events_older_than_30_days_are_gone_from_lists_retrieves_and_cursors(sandbox, raw):
    client = sdk(sandbox)
    first = client.v1.customers.create({"email": "a@example.com"})
    sandbox.advance_clock(10 * 86_400)
    client.v1.customers.create({"email": "b@example.com"})
    events = client.v1.events.list().data
    assert len(events) == 2
    oldest, newest = events[1], events[0]
    assert oldest.data.object.id == first.id
    sandbox.advance_clock(20 * 86_400 - 5)  # the oldest is 30 days less 5 s old: still there
    assert client.v1.events.retrieve(oldest.id).id == oldest.id
    sandbox.advance_clock(6)
    assert [e.id for e in client.v1.events.list().data] == [newest.id]
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.events.retrieve(oldest.id)
    assert gone.value.http_status == 404 and gone.value.code == "resource_missing"
    for cursor in ("starting_after", "ending_before"):
        response = raw(sandbox).get("/v1/events", params={cursor: oldest.id})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("resource_missing", cursor)
        assert error["message"] == f"No such event: '{oldest.id}'"
    assert sandbox.stats()["events_expired"] == 1
    assert client.v1.customers.retrieve(first.id).id == first.id  # only events expire


def test_admin_fixtures_emit_created_deactivated_reactivated(sandbox, raw):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_start", "cus_A")]})
    client = sdk(sandbox)
    assert client.v1.events.list().data == []  # the Python loader, like fixtures at start, emits nothing
    admin = raw(sandbox)
    loaded = admin.post("/_sandbox/fixtures", json={"accounts": [account("fca_new", "cus_A")]})
    assert loaded.status_code == 200
    created = client.v1.events.list({"type": ACCOUNT_EVENT + "created"}).data
    assert [e.data.object.id for e in created] == ["fca_new"]
    assert "previous_attributes" not in created[0].data.to_dict()
    admin.post("/_sandbox/fixtures", json={"accounts": [account("fca_new", "cus_A", status="inactive")]})
    deactivated = client.v1.events.list({"type": ACCOUNT_EVENT + "deactivated"}).data[0]
    assert deactivated.data.object.status == "inactive"
    assert deactivated.data.previous_attributes.to_dict() == {"status": "active"}
    back = admin.post("/_sandbox/accounts/fca_new/status", json={"status": "active"})
    assert back.status_code == 200 and back.json()["status"] == "active"
    reactivated = client.v1.events.list({"type": ACCOUNT_EVENT + "reactivated"}).data[0]
    assert reactivated.data.previous_attributes.to_dict() == {"status": "inactive"}
    assert client.v1.financial_connections.accounts.retrieve("fca_new").status == "active"
    same = admin.post("/_sandbox/accounts/fca_new/status", json={"status": "active"})
    assert same.status_code == 200  # no change, no event
    assert len(client.v1.events.list({"type": ACCOUNT_EVENT + "reactivated"}).data) == 1
    client.v1.financial_connections.accounts.disconnect("fca_new")
    refused = admin.post("/_sandbox/accounts/fca_new/status", json={"status": "active"})
    assert refused.status_code == 400 and "disconnected" in refused.json()["error"]["message"]
    assert admin.post("/_sandbox/accounts/fca_nope/status", json={"status": "active"}).status_code == 404
    assert admin.post("/_sandbox/accounts/fca_start/status", json={"status": "frozen"}).status_code == 400


def test_deactivation_during_a_refresh_fails_it(sandbox):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    client = sdk(sandbox)
    client.v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    sandbox.set_account_status("fca_1", "inactive")
    sandbox.advance_clock(1)
    assert client.v1.financial_connections.accounts.retrieve("fca_1").balance_refresh.status == "failed"
    types = [e.type for e in client.v1.events.list().data]
    assert types == [ACCOUNT_EVENT + "refreshed_balance", ACCOUNT_EVENT + "deactivated"]


def _wait(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_pending_webhooks_counts_deliveries_still_owed(sandbox_factory, receiver):
    quiet = sandbox_factory()
    sdk(quiet).v1.customers.create({"email": "a@example.com"})
    assert sdk(quiet).v1.events.list().data[0].pending_webhooks == 0  # no endpoint: nothing owed

    endpoint = receiver()
    sb = sandbox_factory(webhook_url=endpoint.url, webhook_secret="whsec_x")
    client = sdk(sb)
    client.v1.customers.create({"email": "c@example.com"})
    event = client.v1.events.list().data[0]
    endpoint.wait_for(1)
    _wait(lambda: client.v1.events.retrieve(event.id).pending_webhooks == 0)
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0
    delivered_payload = endpoint.received[0][0]
    assert b'"pending_webhooks":1' in delivered_payload  # as sent: still owed at that moment
    assert [e.id for e in client.v1.events.list({"delivery_success": True}).data if e.id == event.id]


def test_failed_deliveries_stay_pending_and_delivery_success_filters(sandbox_factory, receiver):
    endpoint = receiver(fail_first=1_000)
    sb = sandbox_factory(webhook_url=endpoint.url, webhook_secret="whsec_x", webhook_max_attempts=2,
                         webhook_retry_base=0.01)
    client = sdk(sb)
    client.v1.customers.create({"email": "a@example.com"})
    _wait(lambda: sb.stats()["webhooks"]["gave_up"] == 1)
    event = client.v1.events.list().data[0]
    assert event.pending_webhooks == 1  # never delivered successfully
    assert [e.id for e in client.v1.events.list({"delivery_success": False}).data] == [event.id]
    assert client.v1.events.list({"delivery_success": True}).data == []
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.events.list({"delivery_success": "maybe"})  # type: ignore[dict-item]
    assert bad.value.param == "delivery_success"
