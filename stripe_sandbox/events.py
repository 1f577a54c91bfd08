"""The event store: Stripe-shaped events, their sorted indices, 30-day expiry and webhook delivery counts."""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from stripe_sandbox.errors import not_found
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import API_VERSION

Key = tuple[int, str]

# Stripe keeps events for 30 days: an event is listed and retrievable while now < created + EVENT_TTL_SECONDS.
EVENT_TTL_SECONDS = 30 * 86_400

_dumps = json.JSONEncoder(separators=(",", ":")).encode


class EventRecord:
    """One event; its JSON is cached and rebuilt only when `pending_webhooks` changes."""

    __slots__ = ("head", "json", "key", "pending", "tail", "type")

    def __init__(self, key: Key, event_type: str, head: str, pending: int, tail: str) -> None:
        self.key = key
        self.type = event_type
        self.head = head
        self.tail = tail
        self.pending = pending
        self.json = f"{head}{pending}{tail}"

    @property
    def id(self) -> str:
        return self.key[1]

    def delivered(self) -> None:
        if self.pending > 0:
            self.pending -= 1
            self.json = f"{self.head}{self.pending}{self.tail}"


class EventStore:
    """Events newest first by (created, id), with a per-type index; all methods run on the server loop."""

    def __init__(self, ids: IdFactory, clock: Callable[[], float]) -> None:
        self.ids = ids
        self.now = clock
        self.emitted = 0
        self.expired = 0
        self.clear()

    def clear(self) -> None:
        self.events: dict[str, EventRecord] = {}
        self.keys: list[Key] = []
        self.by_type: dict[str, list[Key]] = {}

    def __len__(self) -> int:
        return len(self.events)

    def emit(self, event_type: str, object_json: str, previous: dict[str, Any] | None, request_id: str | None,
             idempotency_key: str | None, created: int, livemode: bool, webhooks: int) -> EventRecord:
        """Add an event; `webhooks` is how many endpoints it will be delivered to (its first pending_webhooks)."""
        event_id = self.ids.new("evt")
        # previous_attributes is not nullable: it is left out of events that changed nothing before.
        data = f'{{"object":{object_json}' + (f',"previous_attributes":{_dumps(previous)}}}' if previous else "}")
        head = (f'{{"id":{_dumps(event_id)},"object":"event","api_version":"{API_VERSION}","created":{created},'
                f'"data":{data},"livemode":{_dumps(livemode)},"pending_webhooks":')
        tail = (f',"request":{{"id":{_dumps(request_id)},"idempotency_key":{_dumps(idempotency_key)}}},'
                f'"type":{_dumps(event_type)}}}')
        record = EventRecord((created, event_id), event_type, head, webhooks, tail)
        self.events[event_id] = record
        _insert(self.keys, record.key)
        keys = self.by_type.get(event_type)
        if keys is None:
            keys = self.by_type[event_type] = []
        _insert(keys, record.key)
        self.emitted += 1
        return record

    def expire(self) -> int:
        """Drop every event whose 30 days on the virtual clock are over; cheap when none is due."""
        keys = self.keys
        if not keys:
            return 0
        # Gone iff created + TTL <= now, i.e. created <= floor(now - TTL) as `created` is a whole second.
        last_gone = math.floor(self.now() - EVENT_TTL_SECONDS)
        if keys[0][0] > last_gone:
            return 0
        cut = bisect_left(keys, (last_gone + 1,))
        for _, event_id in keys[:cut]:
            del self.events[event_id]
        del keys[:cut]
        for event_type in list(self.by_type):
            type_keys = self.by_type[event_type]
            type_cut = bisect_left(type_keys, (last_gone + 1,))
            del type_keys[:type_cut]
            if not type_keys:
                del self.by_type[event_type]
        self.expired += cut
        return cut

    def get(self, event_id: str) -> EventRecord:
        record = self.events.get(event_id)
        if record is None:
            raise not_found("event", event_id)
        return record

    def delivered(self, event_id: str) -> None:
        record = self.events.get(event_id)
        if record is not None:
            record.delivered()

    def type_lists(self, type_pattern: str | None, types: list[str] | None) -> list[list[Key]]:
        if types is not None:
            return [self.by_type[t] for t in dict.fromkeys(types) if t in self.by_type]
        if type_pattern is None:
            return [self.keys]
        if "*" not in type_pattern:
            keys = self.by_type.get(type_pattern)
            return [keys] if keys else []
        regex = re.compile("^" + ".*".join(re.escape(part) for part in type_pattern.split("*")) + "$")
        return [keys for event_type, keys in self.by_type.items() if regex.match(event_type)]

    def delivery_filtered(self, lists: list[list[Key]], success: bool) -> list[list[Key]]:
        """Only events whose webhooks were all delivered (success) or not: a scan, O(events listed)."""
        events = self.events
        return [[key for key in keys if (events[key[1]].pending == 0) == success] for keys in lists]


def _insert(keys: list[Key], key: Key) -> None:
    if not keys or key > keys[-1]:
        keys.append(key)
    else:
        keys.insert(bisect_left(keys, key), key)
