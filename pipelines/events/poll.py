"""Reading Stripe's events API (`GET /v1/events`) past a cursor into the event store."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import stripe

from pipelines.events.store import ACCOUNT_EVENT_PATTERN, EVENT_ID, EventStore
from pipelines.stripe_fc.client import StripeFCClient


@dataclass(frozen=True)
class EventsCursor:
    """Where the events sensor is: the newest event id seen, and, while the first backfill is unfinished, the
    oldest id it has reached (the next backfill page starts after it)."""

    newest: str | None = None  # None: nothing read yet, the next poll starts from the newest event
    backfill_after: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> EventsCursor:
        """A cursor from its text: JSON as `serialize` writes it, or a bare event id (read only what is newer)."""
        if not text or not text.strip():
            return cls()
        text = text.strip()
        if not text.startswith("{"):
            if not EVENT_ID.fullmatch(text):
                raise ValueError(f"the events sensor cursor must be JSON or an event id (evt_...), got {text[:40]!r}")
            return cls(newest=text)
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("the events sensor cursor is not valid JSON or an event id") from None
        if not isinstance(value, dict):
            raise ValueError("the events sensor cursor must be a JSON object or an event id")
        newest, backfill = value.get("newest"), value.get("backfill_after")
        for name, item in (("newest", newest), ("backfill_after", backfill)):
            if item is not None and not (isinstance(item, str) and EVENT_ID.fullmatch(item)):
                raise ValueError(f"the events sensor cursor's {name} must be an event id or null")
        if newest is None:
            return cls()
        return cls(newest=newest, backfill_after=backfill)

    def serialize(self) -> str:
        return json.dumps({"newest": self.newest, "backfill_after": self.backfill_after}, sort_keys=True)


@dataclass
class PollResult:
    cursor: EventsCursor
    events_read: int = 0
    events_stored: int = 0
    pages: int = 0
    backfill_complete: bool = False
    notes: list[str] = field(default_factory=list)


def _is_missing_cursor(error: stripe.InvalidRequestError) -> bool:
    """Stripe answers 400 resource_missing for a cursor id it no longer has (events are kept 30 days)."""
    code = error.code or (error.error.code if error.error else None)
    return code == "resource_missing"


async def poll_events(client: StripeFCClient, store: EventStore, cursor: EventsCursor, max_pages: int = 50,
                      event_type: str = ACCOUNT_EVENT_PATTERN, page_size: int = 100) -> PollResult:
    """Read `GET /v1/events` past the cursor into the store; the new cursor covers only what was stored.

    First poll (no cursor): read every event present, newest first, so balances refreshed before the sensor was
    switched on (kept 30 days by Stripe) land too; applying old events is safe because fc_accounts keeps the newest
    observation and fc_balances deduplicates. Later polls read `ending_before=<newest>` page by page, oldest page
    first, then continue an unfinished backfill with `starting_after`. At most `max_pages` requests per poll; what is
    left is read on the next one. To skip history, set the cursor to a bare event id.
    """
    result = PollResult(cursor=cursor)
    newest, backfill_after = cursor.newest, cursor.backfill_after
    budget = max_pages

    async def read_page(params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        nonlocal budget
        budget -= 1
        result.pages += 1
        page = await client.request("get", "/v1/events", {"type": event_type, "limit": page_size, **params})
        data = [event for event in page.get("data") or [] if isinstance(event, dict)]
        if data:
            # Pages are newest first; stored oldest first so arrival order follows time.
            stored = store.add_many(data[::-1], time.time(), "events_api")
            result.events_read += len(data)
            result.events_stored += sum(stored)
        return data, bool(page.get("has_more"))

    if newest is None:
        data, has_more = await read_page({})
        newest = data[0]["id"] if data else None
        backfill_after = data[-1]["id"] if data and has_more else None
        if newest is None:
            # Nothing there yet: the next poll starts again from scratch, which is the same as reading forward.
            result.cursor = EventsCursor()
            result.backfill_complete = True
            return result

    # Forward: events newer than `newest`, the page closest to it first, so the cursor advances in time order.
    while newest is not None and budget > 0:
        try:
            data, has_more = await read_page({"ending_before": newest})
        except stripe.InvalidRequestError as exc:
            if not _is_missing_cursor(exc):
                raise
            # The cursor's event expired: read everything present again (the store drops repeats).
            result.notes.append(f"cursor event {newest} is gone (older than Stripe keeps events); re-reading all")
            result.cursor = EventsCursor()
            return result
        if data:
            newest = data[0]["id"]
        if not has_more:
            break

    # Backfill: older events, continuing newest-first below the oldest one reached so far.
    while backfill_after is not None and budget > 0:
        try:
            data, has_more = await read_page({"starting_after": backfill_after})
        except stripe.InvalidRequestError as exc:
            if not _is_missing_cursor(exc):
                raise
            result.notes.append(f"backfill stopped: event {backfill_after} expired, older events are gone too")
            backfill_after = None
            break
        backfill_after = data[-1]["id"] if data and has_more else None

    result.cursor = EventsCursor(newest=newest, backfill_after=backfill_after)
    result.backfill_complete = backfill_after is None
    return result
