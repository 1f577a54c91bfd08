"""The event side channel, hardened: forgotten subjects refused at the door, pruning, secret rotation, stop dates."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.events import EVENT_STORE_RELATIVE, EventStore, drain_store
from pipelines.lifecycle.eventstore import forget_in_store, prune
from pipelines.lifecycle.subjects import ensure_salt, subject_hash
from pipelines.warehouse import Warehouse
from pipelines.webhooks.receiver import SignatureError, verify_signature
from tests.events.helpers import SECRET, T0, account, event, query, signed
from tests.events.receiver import start_receiver

NEW_SECRET = "whsec_rolledSecret9876543210fedcba"


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_both_secrets_are_accepted_while_one_is_rolled(tmp_path: Path) -> None:
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    both = f"{SECRET}, {NEW_SECRET}"
    for secret in (SECRET, NEW_SECRET):
        header = signed(body.decode(), secret=secret, timestamp=now)[1]["Stripe-Signature"]
        assert verify_signature(body, header, both, now=now) == now
    stranger = signed(body.decode(), secret="whsec_someoneElse", timestamp=now)[1]["Stripe-Signature"]
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(body, stranger, both, now=now)

    with start_receiver(tmp_path / "store.sqlite", both, port=0) as handle:
        for n, secret in enumerate((SECRET, NEW_SECRET, "whsec_someoneElse")):
            payload = event(f"evt_{n}", "refreshed_balance", T0, account(f"fca_{n}"))
            body_bytes, headers = signed(payload, secret=secret)
            status = httpx.post(handle.webhook_url, content=body_bytes, headers=headers).status_code
            assert status == (200 if n < 2 else 400)
    with EventStore(tmp_path / "store.sqlite") as store:
        assert store.stats().total == 2


def test_events_about_forgotten_subjects_are_refused_by_receiver_and_store(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    path = warehouse / EVENT_STORE_RELATIVE
    salt = ensure_salt(warehouse)
    with EventStore(path) as store:
        store.add(event("evt_old", "refreshed_balance", T0, account("fca_1", customer="cus_Gone")), T0, "webhook")
        with store.locked() as connection:
            removed = forget_in_store(connection, salt, {subject_hash(salt, "cus_Gone"): "customer"})
        assert removed == 1
        assert store.stats().total == 0
    with start_receiver(path, SECRET, port=0) as handle:
        answers = []
        for event_id, customer in (("evt_a", "cus_Gone"), ("evt_b", "cus_Kept")):
            body, headers = signed(event(event_id, "refreshed_balance", T0, account("fca_9", customer=customer)))
            answer = httpx.post(handle.webhook_url, content=body, headers=headers)
            assert answer.status_code == 200  # acknowledged either way, so Stripe stops retrying
            answers.append(answer.json()["stored"])
        assert answers == [False, True]
        health = httpx.get(handle.url + "/healthz").json()
        assert (health["skipped_forgotten"], health["stored"]) == (1, 1)
    with EventStore(path) as store:
        rows = store.pending()
        assert [r.event_id for r in rows] == ["evt_b"]
        # The sensor's path (add_many) refuses it too and counts it, naming nobody.
        assert store.add_many([event("evt_c", "disconnected", T0, account("fca_2", customer="cus_Gone"))],
                              T0, "events_api") == [False]
        assert store.skipped_forgotten == 1


def test_prune_drops_only_applied_events_past_retention(tmp_path: Path) -> None:
    now = time.time()
    with EventStore(tmp_path / "store.sqlite") as store:
        store.add(event("evt_old_applied", "refreshed_balance", int(now - 40 * 86_400), account()), now, "webhook")
        store.add(event("evt_old_pending", "refreshed_balance", int(now - 40 * 86_400), account()), now, "webhook")
        store.add(event("evt_new_applied", "refreshed_balance", int(now - 86_400), account()), now, "webhook")
        store.mark_loaded(["evt_old_applied", "evt_new_applied"], loaded_at=now - 36 * 86_400)
        with store.locked() as connection:
            assert prune(connection, 35, now=now) == 1
            assert prune(connection, 35, now=now) == 0
        ids = sorted(r[0] for r in sqlite3.connect(store.path).execute("SELECT event_id FROM stored_events"))
    assert ids == ["evt_new_applied", "evt_old_pending"]


def test_access_stopped_at_is_the_first_stop_and_clears_when_active_again(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with EventStore(tmp_path / "store.sqlite") as store, Warehouse(warehouse) as wh:
        def apply(event_id: str, kind: str, created: int, status: str) -> None:
            store.add(event(event_id, kind, created, account(status=status)), time.time(), "webhook")
            drain_store(store, wh)

        apply("evt_1", "created", T0, "active")
        assert query(warehouse, "SELECT access_stopped_at FROM fc_accounts") == [(None,)]
        apply("evt_2", "deactivated", T0 + 100, "inactive")
        assert query(warehouse, "SELECT access_stopped_at FROM fc_accounts") == [(utc(T0 + 100),)]
        apply("evt_3", "disconnected", T0 + 200, "disconnected")  # still stopped: the first stop's time stays
        assert query(warehouse, "SELECT status, access_stopped_at FROM fc_accounts") == [
            ("disconnected", utc(T0 + 100))]
        apply("evt_late", "deactivated", T0 + 50, "inactive")  # a late event never wins
        assert query(warehouse, "SELECT status, access_stopped_at FROM fc_accounts") == [
            ("disconnected", utc(T0 + 100))]
        apply("evt_4", "reactivated", T0 + 300, "active")
        assert query(warehouse, "SELECT access_stopped_at FROM fc_accounts") == [(None,)]
        apply("evt_5", "deactivated", T0 + 400, "inactive")
        assert query(warehouse, "SELECT access_stopped_at FROM fc_accounts") == [(utc(T0 + 400),)]
        # The history stays: the balance rows are never touched by a stop.
        wh.publish()


def test_sensor_retries_a_failed_run_under_a_new_key_after_the_backoff(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from assets.events import fc_events, stripe_events_sensor
    from pipelines.lifecycle import retry
    from pipelines.resources import StripeResource, WarehouseResource

    warehouse = tmp_path / "wh"
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:
        store.add(event("evt_waiting", "refreshed_balance", T0, account()), time.time(), "webhook")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"stripe": StripeResource(api_key=sandbox.api_key, api_base=sandbox.base_url),
                 "warehouse": WarehouseResource(directory=str(warehouse))}

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance) as context:
            return stripe_events_sensor(context)

    first = tick(None)
    assert [r.run_key for r in first.run_requests] == ["evt_waiting"]
    # The requested run fails (its warehouse path is a file), as a run might on a full disk.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    failed = dg.materialize([fc_events], instance=instance, raise_on_error=False,
                            tags={"dagster/run_key": "evt_waiting"},
                            resources={**resources, "warehouse": WarehouseResource(directory=str(blocker))})
    assert not failed.success
    assert [r.run_key for r in tick(first.cursor).run_requests] == ["evt_waiting"]  # backoff (60 s) not over

    monkeypatch.setattr(retry, "BACKOFF_FIRST_SECONDS", 0.0)
    second = tick(first.cursor)
    assert [r.run_key for r in second.run_requests] == ["evt_waiting#retry1"]  # a new key: Dagster runs it
    landed = dg.materialize([fc_events], instance=instance, resources=resources,
                            tags={"dagster/run_key": "evt_waiting#retry1"})
    assert landed.success
    quiet = tick(second.cursor)
    assert not quiet.run_requests
