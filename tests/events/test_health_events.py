"""The six account-health events change fc_accounts through the event store, in event order, without a refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.events import EVENT_STORE_RELATIVE, EventStore
from stripe_sandbox import Sandbox
from tests.events.helpers import T0, account, event, query
from tests.events.test_sensor import drain, tick

HEALTH = "SELECT status, expected_deactivation_at, account_numbers_status, access_stopped_at FROM fc_accounts " \
         "WHERE account_id = 'fca_1'"


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def numbers(*statuses: str) -> list[dict[str, Any]]:
    return [{"expected_expiry_date": None, "identifier_type": "account_number", "status": s,
             "supported_networks": ["ach"]} for s in statuses]


def details(date: int) -> dict[str, Any]:
    return {"active": {"action": "relink_required", "cause": "access_expired", "expected_deactivation_date": date}}


def health_account(status: str = "active", deactivates: int | None = None, *statuses: str) -> dict[str, Any]:
    obj = account(status=status)
    obj.pop("status_details")
    if deactivates is not None:
        obj["status_details"] = details(deactivates)
    obj["account_numbers"] = numbers(*statuses) if statuses else None
    return obj


@pytest.mark.timeout(180)
def test_scheduled_sandbox_events_change_the_columns_without_a_refresh(sandbox: Sandbox, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    start = int(sandbox.now())
    deactivates, moved = start + 14 * 86_400, start + 7 * 86_400
    steps = [
        ({"event": "upcoming_deactivation", "expected_deactivation_date": deactivates},
         ("active", utc(deactivates), "transactable", None)),
        ({"event": "expected_deactivation_date_updated", "expected_deactivation_date": moved},
         ("active", utc(moved), "transactable", None)),
        ({"event": "account_numbers_updated", "account_numbers": [{"status": "expired"}]},
         ("active", utc(moved), "expired", None)),
        # A status Stripe may add later: stored as sent, never rejected.
        ({"event": "account_numbers_updated", "account_numbers": [{"status": "frozen"}, {"status": "deactivated"}]},
         ("active", utc(moved), "frozen", None)),
        ({"event": "deactivated"}, ("inactive", None, "frozen", "stopped")),
        ({"event": "reactivated"}, ("active", None, "frozen", None)),
        ({"event": "disconnected"}, ("disconnected", None, "frozen", "stopped")),
    ]
    schedule = [{"at": start + 100 * (n + 1), **entry} for n, (entry, _) in enumerate(steps)]
    sandbox.load_fixtures({
        "customers": [{"id": "cus_A", "email": "ann@example.com", "created": T0}],
        "accounts": [{"id": "fca_1", "customer": "cus_A", "category": "cash", "subcategory": "checking",
                      "permissions": ["balances"], "created": T0, "account_numbers": [{"status": "transactable"}],
                      "schedule": schedule}]})
    cursor = None
    for (entry, want), scheduled in zip(steps, schedule, strict=True):
        sandbox.advance_clock(100)
        cursor = tick(sandbox, warehouse, cursor).cursor
        drain(warehouse)
        status, expected, numbers_status, stopped = query(warehouse, HEALTH)[0]
        got = (status, expected, numbers_status, None if stopped is None else "stopped")
        assert got == want, entry["event"]
        if stopped is not None:
            assert stopped == utc(scheduled["at"])  # the event's created time: when access stopped
    assert sandbox.stats()["refreshes_started"] == 0  # events alone changed the columns
    types = [t for (t,) in query(warehouse, "SELECT type FROM fc_events ORDER BY created")]
    assert types == [f"financial_connections.account.{entry['event']}" for entry in schedule]


def test_an_older_health_event_never_overwrites_a_newer_state(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    newer = event("evt_numbers", "account_numbers_updated", T0 + 300,
                  health_account("active", T0 + 9000, "expired"))
    older = event("evt_upcoming", "upcoming_deactivation", T0 + 200, health_account("active", T0 + 5000,
                                                                                   "transactable"))
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:
        store.add(newer, time.time(), "webhook")
    drain(warehouse)
    assert query(warehouse, HEALTH) == [("active", utc(T0 + 9000), "expired", None)]
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:  # delivered late, and again
        store.add(older, time.time(), "events_api")
    drain(warehouse)
    drain(warehouse)
    assert query(warehouse, HEALTH) == [("active", utc(T0 + 9000), "expired", None)]


def test_health_events_in_one_batch_apply_in_event_order(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:  # stored newest first, as an events page is
        store.add(event("evt_2", "expected_deactivation_date_updated", T0 + 200,
                        health_account("active", T0 + 4000, "pending")), time.time(), "events_api")
        store.add(event("evt_1", "upcoming_deactivation", T0 + 100,
                        health_account("active", T0 + 8000, "transactable")), time.time(), "events_api")
    drain(warehouse)
    assert query(warehouse, HEALTH) == [("active", utc(T0 + 4000), "pending", None)]
    drain(warehouse)  # nothing pending: nothing changes
    assert query(warehouse, "SELECT count(*) FROM fc_events") == [(2,)]
