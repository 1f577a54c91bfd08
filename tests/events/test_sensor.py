"""The events sensor and the events-API poller against the sandbox; the sandbox's own webhooks into the receiver."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from assets.events import fc_events, stripe_events_sensor
from pipelines.events import EVENT_STORE_RELATIVE, EventsCursor, EventStore, poll_events
from pipelines.resources import StripeResource, WarehouseResource
from pipelines.stripe_fc.client import ClientSettings, StripeFCClient
from stripe_sandbox import Sandbox
from tests.events.helpers import SECRET, T0, query
from tests.events.receiver import start_receiver

SCRIPTED_BALANCE = {"as_of": T0 + 500, "type": "cash", "current": {"usd": 6000}, "cash": {"available": {"usd": 5000}}}


def fixtures(account_count: int = 2) -> dict[str, Any]:
    return {
        "customers": [{"id": "cus_A", "email": "ann@example.com", "created": T0}],
        "accounts": [
            {"id": f"fca_{n}", "customer": "cus_A", "institution_name": "StripeBank", "category": "cash",
             "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
             "created": T0, "refresh_outcomes": [{"status": "succeeded", "balance": SCRIPTED_BALANCE}]}
            for n in range(1, account_count + 1)
        ],
    }


def api(sandbox: Sandbox, method: str, path: str, **params: Any) -> dict[str, Any]:
    """A call to the sandbox as another flow (e.g. prefetch at collection) would make it."""
    response = httpx.request(method, sandbox.base_url + path, headers={"Authorization": f"Bearer {sandbox.api_key}"},
                             params=params if method == "GET" else None, data=params if method == "POST" else None)
    assert response.status_code == 200, response.text
    return response.json()


def sandbox_event_ids(sandbox: Sandbox) -> list[str]:
    """Every account event id the sandbox has, newest first."""
    ids: list[str] = []
    params: dict[str, Any] = {"type": "financial_connections.account.*", "limit": 100}
    while True:
        page = api(sandbox, "GET", "/v1/events", **params)
        ids += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            return ids
        params["starting_after"] = ids[-1]


def refresh_and_wait(sandbox: Sandbox, account_id: str) -> None:
    before = len(sandbox_event_ids(sandbox))
    api(sandbox, "POST", f"/v1/financial_connections/accounts/{account_id}/refresh", **{"features[]": "balance"})
    deadline = time.monotonic() + 30
    while len(sandbox_event_ids(sandbox)) == before:
        assert time.monotonic() < deadline, "the sandbox never completed the refresh"
        time.sleep(0.05)


def resources(sandbox: Sandbox, warehouse: Path) -> dict[str, Any]:
    return {
        "stripe": StripeResource(api_key=sandbox.api_key, api_base=sandbox.base_url),
        "warehouse": WarehouseResource(directory=str(warehouse)),
    }


def tick(sandbox: Sandbox, warehouse: Path, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(cursor=cursor, resources=resources(sandbox, warehouse)) as context:
        result = stripe_events_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def stored(warehouse: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(warehouse / EVENT_STORE_RELATIVE) as con:
        return con.execute("SELECT event_id, source FROM stored_events ORDER BY event_id").fetchall()


def drain(warehouse: Path) -> None:
    result = dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success


@pytest.mark.timeout(180)
def test_sensor_stores_new_events_advances_cursor_and_requests_one_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    sandbox.load_fixtures(fixtures())
    refresh_and_wait(sandbox, "fca_1")  # another flow refreshed: the sensor must land it without refreshing
    api(sandbox, "POST", "/v1/financial_connections/accounts/fca_2/disconnect")
    ids = sandbox_event_ids(sandbox)
    assert len(ids) == 2

    first = tick(sandbox, warehouse, None)
    assert sorted(stored(warehouse)) == sorted((i, "events_api") for i in ids)
    assert json.loads(first.cursor)["newest"] == ids[0]
    assert [r.run_key for r in first.run_requests] == [ids[0]]

    # The run has not happened yet: the same run key again, which Dagster does not launch twice.
    again = tick(sandbox, warehouse, first.cursor)
    assert [r.run_key for r in again.run_requests] == [ids[0]]
    assert again.cursor == first.cursor

    drain(warehouse)  # what the requested run does
    quiet = tick(sandbox, warehouse, first.cursor)
    assert not quiet.run_requests
    assert quiet.skip_reason is not None
    assert quiet.cursor == first.cursor

    balances = query(warehouse, "SELECT account_id, currency, current_minor, available, as_of FROM fc_balances")
    assert balances == [("fca_1", "usd", 6000, Decimal("50.0000"), datetime.fromtimestamp(T0 + 500, tz=UTC))]
    assert query(warehouse, "SELECT account_id, status FROM fc_accounts ORDER BY 1") == [
        ("fca_1", "active"), ("fca_2", "disconnected")]
    assert sandbox.stats()["refreshes_started"] == 1  # only the other flow's refresh

    # Something new: only it is read, the cursor moves to it and a new run is keyed by it.
    api(sandbox, "POST", "/v1/financial_connections/accounts/fca_1/disconnect")
    newest = sandbox_event_ids(sandbox)[0]
    third = tick(sandbox, warehouse, quiet.cursor)
    assert json.loads(third.cursor)["newest"] == newest
    assert [r.run_key for r in third.run_requests] == [newest]
    assert len(stored(warehouse)) == 3


async def _poll(sandbox: Sandbox, store: EventStore, cursor: EventsCursor, **kwargs: Any):
    client = StripeFCClient(ClientSettings(api_key=sandbox.api_key, api_base=sandbox.base_url))
    try:
        return await poll_events(client, store, cursor, **kwargs)
    finally:
        await client.aclose()


@pytest.mark.timeout(180)
def test_backfill_and_forward_reads_resume_across_polls(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load_fixtures(fixtures(account_count=9))
    for n in range(1, 8):  # 7 events before the first poll
        api(sandbox, "POST", f"/v1/financial_connections/accounts/fca_{n}/disconnect")
    cursor = EventsCursor()
    polls = 0
    with EventStore(tmp_path / "store.sqlite") as store:
        run: Callable[..., Any] = lambda c: asyncio.run(_poll(sandbox, store, c, max_pages=2, page_size=2))  # noqa: E731
        result = run(cursor)
        polls += 1
        assert not result.backfill_complete  # 2 pages of 2 cannot hold 7 events
        # New events while the backfill is unfinished.
        for n in (8, 9):
            api(sandbox, "POST", f"/v1/financial_connections/accounts/fca_{n}/disconnect")
        while not result.backfill_complete or result.events_stored:
            result = run(result.cursor)
            polls += 1
            assert polls < 20
        every = sandbox_event_ids(sandbox)
        with sqlite3.connect(store.path) as con:
            ids = [row[0] for row in con.execute("SELECT event_id FROM stored_events")]
    assert sorted(ids) == sorted(every)
    assert len(every) == 9 and polls >= 3
    assert result.cursor == EventsCursor(newest=every[0])


@pytest.mark.timeout(120)
def test_bare_event_id_cursor_reads_only_newer_and_expired_cursor_restarts(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.load_fixtures(fixtures(account_count=3))
    for n in (1, 2):
        api(sandbox, "POST", f"/v1/financial_connections/accounts/fca_{n}/disconnect")
    skip_to = sandbox_event_ids(sandbox)[0]
    api(sandbox, "POST", "/v1/financial_connections/accounts/fca_3/disconnect")
    newest = sandbox_event_ids(sandbox)[0]
    with EventStore(tmp_path / "store.sqlite") as store:
        result = asyncio.run(_poll(sandbox, store, EventsCursor.parse(skip_to)))
        assert (result.events_read, result.events_stored) == (1, 1)
        assert result.cursor == EventsCursor(newest=newest)

        gone = asyncio.run(_poll(sandbox, store, EventsCursor.parse("evt_expiredLongAgo000000000")))
        assert gone.cursor == EventsCursor() and gone.notes  # back to reading everything, said out loud
        again = asyncio.run(_poll(sandbox, store, gone.cursor))
        assert (again.events_read, again.events_stored) == (3, 2)
        assert store.stats().total == 3


@pytest.mark.timeout(180)
def test_sandbox_webhooks_are_verified_stored_and_deduped_with_the_sensor(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    handle = start_receiver(warehouse / EVENT_STORE_RELATIVE, SECRET, port=0)
    try:
        sandbox = sandbox_factory(webhook_url=handle.webhook_url, webhook_secret=SECRET)
        sandbox.load_fixtures(fixtures(account_count=1))
        api(sandbox, "POST", "/v1/customers", email="bob@example.com")  # customer.created goes out too
        refresh_and_wait(sandbox, "fca_1")
        (event_id,) = sandbox_event_ids(sandbox)
        deadline = time.monotonic() + 30
        while not (warehouse / EVENT_STORE_RELATIVE).exists() or not stored(warehouse):
            assert time.monotonic() < deadline, "the sandbox's webhook never reached the store"
            time.sleep(0.05)
        assert stored(warehouse) == [(event_id, "webhook")]
        assert handle.receiver.counts["rejected"] == 0

        result = tick(sandbox, warehouse, None)  # the same event through the events API: not stored twice
        assert stored(warehouse) == [(event_id, "webhook")]
        assert [r.run_key for r in result.run_requests] == [event_id]
        while sandbox.stats()["webhooks"]["delivered"] < 2:  # the customer event's delivery may still be going
            assert time.monotonic() < deadline, "the sandbox never finished delivering"
            time.sleep(0.05)
        stats = sandbox.stats()
    finally:
        handle.stop()
    # Every delivery was answered 2xx on the first attempt (the customer event too, acknowledged, not kept).
    assert stats["webhooks"]["failed_attempts"] == 0 and stats["webhooks"]["delivered"] == 2
    drain(warehouse)
    assert query(warehouse, "SELECT account_id, current_minor FROM fc_balances") == [("fca_1", 6000)]
    assert "bob@example.com" not in (warehouse / EVENT_STORE_RELATIVE).read_bytes().decode("utf-8", "replace")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("key", ["sk_test_notTheSandboxKey123", "rk_test_withoutEventsRead456"])
def test_sensor_key_problems_fail_the_tick_without_showing_the_key(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, key: str
) -> None:
    sandbox = sandbox_factory(restricted_keys={"rk_test_withoutEventsRead456": [
        "customers_read", "financial_connections_accounts_read", "financial_connections_accounts_write"]})
    sandbox.load_fixtures(fixtures(account_count=1))
    api(sandbox, "POST", "/v1/financial_connections/accounts/fca_1/disconnect")
    with dg.build_sensor_context(cursor=None, resources={
        "stripe": StripeResource(api_key=key, api_base=sandbox.base_url),
        "warehouse": WarehouseResource(directory=str(tmp_path / "wh")),
    }) as context, pytest.raises(Exception) as caught:
        stripe_events_sensor(context)
    message = str(caught.value)
    assert key not in message and "sk_test_" not in message and "rk_test_" not in message
    assert ("/v1/events" in message) if key.startswith("rk_") else ("API key" in message)
    assert len(message.strip().splitlines()) == 1
