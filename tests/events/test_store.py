"""The SQLite event store: dedupe, atomic batches, durability across processes, drain bookkeeping, paths, cursors."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.events import (
    EventsCursor,
    EventStore,
    EventStoreError,
    InvalidEventError,
    event_store_path,
    summarize_event,
)
from tests.events.helpers import T0, account, event


def ids_in(path: Path) -> list[str]:
    with sqlite3.connect(path) as con:
        return [row[0] for row in con.execute("SELECT event_id FROM stored_events ORDER BY seq")]


def test_add_dedupes_by_id_and_keeps_the_first_copy(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with EventStore(path) as store:
        first = event("evt_1", "refreshed_balance", T0, account())
        assert store.add(first, 1.0, "webhook") is True
        changed = event("evt_1", "refreshed_balance", T0, account(status="inactive"))
        assert store.add(changed, 2.0, "events_api") is False
        (stored,) = store.pending()
    assert (stored.source, stored.received_at, stored.account_id) == ("webhook", 1.0, "fca_1")
    assert stored.event()["data"]["object"]["status"] == "active"


def test_a_batch_with_an_invalid_event_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with EventStore(path) as store:
        good = event("evt_ok", "created", T0, account())
        with pytest.raises(InvalidEventError):
            store.add_many([good, {"id": "evt_bad", "type": "x", "created": "yesterday"}], 1.0, "events_api")
        assert store.stats().total == 0
        with pytest.raises(ValueError, match="source"):
            store.add(good, 1.0, "carrier_pigeon")


@pytest.mark.parametrize("bad", [None, [], {"type": "t", "created": 1}, {"id": "", "type": "t", "created": 1},
                                 {"id": "evt_1", "created": 1}, {"id": "evt_1", "type": "t", "created": True},
                                 {"id": "evt_1", "type": "t", "created": -5}])
def test_summarize_event_refuses_unusable_events(bad: object) -> None:
    with pytest.raises(InvalidEventError):
        summarize_event(bad)


def test_summary_has_no_account_for_other_objects() -> None:
    customer_event = {"id": "evt_c", "type": "customer.created", "created": T0,
                      "data": {"object": {"id": "cus_A", "object": "customer"}}}
    assert summarize_event(customer_event).account_id is None


def test_pending_mark_loaded_and_the_snapshot_bound(tmp_path: Path) -> None:
    with EventStore(tmp_path / "s.sqlite") as store:
        for n in range(5):
            store.add(event(f"evt_{n}", "created", T0 + n, account(f"fca_{n}")), float(n), "webhook")
        snapshot = store.stats().max_seq
        store.add(event("evt_late", "created", T0, account("fca_late")), 9.0, "webhook")
        assert [e.event_id for e in store.pending(3, max_seq=snapshot)] == ["evt_0", "evt_1", "evt_2"]
        assert len(store.pending(100, max_seq=snapshot)) == 5
        assert store.mark_loaded(["evt_0", "evt_1", "evt_unknown"]) == 2
        assert store.mark_loaded(["evt_0"]) == 0  # already loaded
        stats = store.stats()
        assert (stats.total, stats.pending) == (6, 4)
        assert stats.newest_pending_id == "evt_4"  # newest by created, whatever the arrival order
        assert [e.event_id for e in store.pending()] == ["evt_2", "evt_3", "evt_4", "evt_late"]


CHILD = textwrap.dedent("""
    import sys, time
    from pipelines.events import EventStore
    store = EventStore(sys.argv[1])
    new = 0
    for n in range(int(sys.argv[2])):
        event = {"id": f"evt_{n}", "type": "financial_connections.account.created", "created": 1764000000 + n}
        new += store.add(event, time.time(), "webhook")
    print(new, flush=True)
""")


def test_two_processes_adding_the_same_events_store_each_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    count = 150
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(count)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert sum(int(out) for out, _ in outputs) == count  # every id reported new by exactly one writer
    assert sorted(ids_in(path)) == sorted(f"evt_{n}" for n in range(count))


def test_an_added_event_survives_kill_9_right_after_add_returns(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    script = textwrap.dedent("""
        import sys, time
        from pipelines.events import EventStore
        store = EventStore(sys.argv[1])
        store.add({"id": "evt_k", "type": "financial_connections.account.created", "created": 1}, time.time(),
                  "webhook")
        print("stored", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "stored"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert ids_in(path) == ["evt_k"]


def test_an_unusable_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(EventStoreError, match="cannot open event store") as caught:
        EventStore(blocker / "store.sqlite")
    assert "\n" not in str(caught.value)


def test_store_path_from_env_or_warehouse(tmp_path: Path) -> None:
    assert event_store_path(tmp_path / "wh", env={}) == tmp_path / "wh" / "events" / "webhook_events.sqlite"
    assert event_store_path(None, env={"FC_BALANCES_WAREHOUSE": str(tmp_path / "w2")}) == (
        tmp_path / "w2" / "events" / "webhook_events.sqlite")
    explicit = tmp_path / "elsewhere.sqlite"
    assert event_store_path(tmp_path / "wh", env={"FC_BALANCES_EVENT_STORE": str(explicit)}) == explicit


def test_cursor_round_trip_and_forms() -> None:
    assert EventsCursor.parse(None) == EventsCursor() == EventsCursor.parse("  ")
    assert EventsCursor.parse("evt_123") == EventsCursor(newest="evt_123")
    cursor = EventsCursor(newest="evt_9", backfill_after="evt_2")
    assert EventsCursor.parse(cursor.serialize()) == cursor
    assert json.loads(cursor.serialize()) == {"newest": "evt_9", "backfill_after": "evt_2"}
    assert EventsCursor.parse('{"newest": null, "backfill_after": null}') == EventsCursor()
    for bad in ("{oops", "[1]", '{"newest": 5}'):
        with pytest.raises(ValueError, match="cursor"):
            EventsCursor.parse(bad)
