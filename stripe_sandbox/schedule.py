"""Account health in fixtures: status_details, account_numbers, and a schedule of lifecycle events at virtual times.

A fixture account may carry `schedule`, a list of `{"at": <unix>, "event": <name>, ...}`: when the virtual clock
reaches `at`, the change is made to the account and `financial_connections.account.<name>` is emitted with
`created = at`. Changes and refresh completions run in time order, so a refresh due after a scheduled deactivation
fails as it would at Stripe.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from stripe_sandbox.events import EventRecord
from stripe_sandbox.records import ACCOUNT_EVENT, AccountRecord, _previous_attributes

UPCOMING_DEACTIVATION = "upcoming_deactivation"
DEACTIVATION_DATE_UPDATED = "expected_deactivation_date_updated"
ACCOUNT_NUMBERS_UPDATED = "account_numbers_updated"
# What a schedule entry may name, and what each takes besides `at` and `event`.
SCHEDULED_EVENTS: dict[str, tuple[str, ...]] = {
    UPCOMING_DEACTIVATION: ("expected_deactivation_date", "action", "cause"),
    DEACTIVATION_DATE_UPDATED: ("expected_deactivation_date", "action", "cause"),
    "deactivated": (),
    "reactivated": (),
    "disconnected": (),
    ACCOUNT_NUMBERS_UPDATED: ("account_numbers",),
}
# Defaults for status_details.active (Stripe's spec requires all three).
DEFAULT_ACTION = "relink_required"
DEFAULT_CAUSE = "access_expired"


class ScheduleError(ValueError):
    """A status_details, account_numbers or schedule value a fixture cannot use (the caller adds where)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def active_details(raw: Any, name: str) -> dict[str, Any]:
    """`status_details.active` in the spec's shape; action and cause default, any string is kept (open enums)."""
    if not isinstance(raw, dict):
        raise ScheduleError(f"'{name}' must be an object")
    date = raw.get("expected_deactivation_date")
    if not _is_int(date):
        raise ScheduleError(f"'{name}.expected_deactivation_date' must be an integer unix time, not {date!r}")
    details = {"action": raw.get("action", DEFAULT_ACTION), "cause": raw.get("cause", DEFAULT_CAUSE),
               "expected_deactivation_date": date}
    for key in ("action", "cause"):
        if not isinstance(details[key], str) or not details[key]:
            raise ScheduleError(f"'{name}.{key}' must be a non-empty string")
    unknown = sorted(set(raw) - set(details))
    if unknown:
        raise ScheduleError(f"'{name}' has unknown key {unknown[0]!r}")
    return details


def status_details(raw: Any) -> dict[str, Any] | None:
    """A fixture's `status_details`: null/absent, or `{"active": {...}}` (the only details the spec has)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"active"}:
        raise ScheduleError("'status_details' must be an object with only 'active'")
    return {"active": active_details(raw["active"], "status_details.active")} if "active" in raw else {}


def account_numbers(raw: Any, name: str = "account_numbers") -> list[dict[str, Any]] | None:
    """A fixture's `account_numbers`: each needs a `status` string (any value: the enum is open since endive),
    and gets the spec's other required fields by default."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ScheduleError(f"'{name}' must be a list of account numbers or null")
    numbers = []
    for position, number in enumerate(raw):
        if not isinstance(number, dict) or not isinstance(number.get("status"), str) or not number["status"]:
            raise ScheduleError(f"'{name}[{position}]' must be an object with a non-empty 'status'")
        numbers.append({"expected_expiry_date": None, "identifier_type": "account_number",
                        "supported_networks": ["ach"], **number})
    return numbers


def schedule(raw: Any) -> list[dict[str, Any]] | None:
    """A fixture's `schedule`, checked: entries `{at, event, ...}` with the keys SCHEDULED_EVENTS allows."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ScheduleError("'schedule' must be a list of {at, event, ...}")
    entries = []
    for position, entry in enumerate(raw):
        where = f"schedule[{position}]"
        if not isinstance(entry, dict):
            raise ScheduleError(f"{where} must be an object")
        event = entry.get("event")
        if event not in SCHEDULED_EVENTS:
            raise ScheduleError(f"{where} has unknown event {event!r} (expected {', '.join(SCHEDULED_EVENTS)})")
        if not _is_int(entry.get("at")):
            raise ScheduleError(f"{where}.at must be an integer unix time, not {entry.get('at')!r}")
        extra = sorted(set(entry) - {"at", "event", *SCHEDULED_EVENTS[event]})
        if extra:
            raise ScheduleError(f"{where} ({event}) has unknown key {extra[0]!r}")
        checked = dict(entry)
        if event in (UPCOMING_DEACTIVATION, DEACTIVATION_DATE_UPDATED):
            checked["active"] = active_details({k: entry[k] for k in SCHEDULED_EVENTS[event] if k in entry}, where)
        if event == ACCOUNT_NUMBERS_UPDATED:
            if "account_numbers" not in entry:
                raise ScheduleError(f"{where} ({event}) needs 'account_numbers'")
            checked["account_numbers"] = account_numbers(entry["account_numbers"], f"{where}.account_numbers")
        entries.append(checked)
    return entries


class ScheduledChanges:
    """The state's part that runs fixture schedules (a mixin of SandboxState, like RefreshLifecycle)."""

    accounts: dict[str, AccountRecord]
    counters: dict[str, int]
    _scheduled: list[tuple[int, int, str, int]]
    _schedule_seq: int
    _schedules: dict[str, tuple[AccountRecord, list[dict[str, Any]]]]
    disconnect: Callable[..., AccountRecord]  # RefreshLifecycle's (stripe_sandbox/lifecycle.py)

    def _emit(self, event_type: str, object_json: str, previous: dict[str, Any] | None,
              request_id: str | None, idempotency_key: str | None, created: int) -> EventRecord:
        raise NotImplementedError

    def _schedule_account(self, record: AccountRecord, entries: list[dict[str, Any]] | None) -> None:
        """Queue an account's entries; a replaced account's old entries are dropped (they name the old record)."""
        account_id = record.doc["id"]
        self._schedules.pop(account_id, None)
        if not entries:
            return
        self._schedules[account_id] = (record, entries)
        for index, entry in enumerate(entries):
            self._schedule_seq += 1
            heapq.heappush(self._scheduled, (entry["at"], self._schedule_seq, account_id, index))

    def next_change(self, now: float) -> int | None:
        """When the next scheduled change is due, if it is due by `now`."""
        while self._scheduled:
            at, _, account_id, _ = self._scheduled[0]
            if account_id not in self._schedules or self.accounts.get(account_id) is not \
                    self._schedules[account_id][0]:
                heapq.heappop(self._scheduled)  # the account was replaced or reset: its schedule went with it
                continue
            return at if at <= now else None
        return None

    def apply_next_change(self) -> None:
        """Make the change at the head of the queue (next_change said it is due) and emit its event."""
        at, _, account_id, index = heapq.heappop(self._scheduled)
        record, entries = self._schedules[account_id]
        entry = entries[index]
        event = entry["event"]
        applied = _CHANGES[event](self, record, entry, at)
        self.counters["scheduled_events" if applied else "scheduled_skipped"] += 1

    def _change(self, record: AccountRecord, event: str, values: dict[str, Any], at: int,
                drop: tuple[str, ...] = ()) -> bool:
        doc = record.doc
        old = {name: doc.get(name) for name in (*values, *drop) if name in doc}
        for name, value in values.items():
            record.set(name, value)
        for name in drop:
            if name in doc:
                doc.pop(name)
                record.json = None
        new = {name: doc.get(name) for name in old}
        previous = {k: v for k, v in (_previous_attributes(old, new) or {}).items() if v is not None}
        self._emit(ACCOUNT_EVENT + event, record.render(), previous or None, None, None, at)
        return True


def _upcoming(state: ScheduledChanges, record: AccountRecord, entry: dict[str, Any], at: int) -> bool:
    if record.doc.get("status") != "active":
        return False  # only active accounts have active details
    return state._change(record, entry["event"], {"status_details": {"active": entry["active"]}}, at)


def _status(status: str, before: str) -> Callable[[ScheduledChanges, AccountRecord, dict[str, Any], int], bool]:
    def change(state: ScheduledChanges, record: AccountRecord, entry: dict[str, Any], at: int) -> bool:
        if record.doc.get("status") != before:
            return False  # Stripe sends these only for that transition
        drop = ("status_details",) if status == "inactive" else ()
        return state._change(record, entry["event"], {"status": status}, at, drop)
    return change


def _disconnected(state: ScheduledChanges, record: AccountRecord, entry: dict[str, Any], at: int) -> bool:
    if record.doc.get("status") == "disconnected":
        return False
    state.disconnect(record.doc["id"], None, None, created=at)  # emits DISCONNECTED itself
    return True


def _numbers(state: ScheduledChanges, record: AccountRecord, entry: dict[str, Any], at: int) -> bool:
    return state._change(record, entry["event"], {"account_numbers": entry["account_numbers"]}, at)


_CHANGES: dict[str, Callable[[ScheduledChanges, AccountRecord, dict[str, Any], int], bool]] = {
    UPCOMING_DEACTIVATION: _upcoming,
    DEACTIVATION_DATE_UPDATED: _upcoming,
    "deactivated": _status("inactive", "active"),
    "reactivated": _status("active", "inactive"),
    "disconnected": _disconnected,
    ACCOUNT_NUMBERS_UPDATED: _numbers,
}
