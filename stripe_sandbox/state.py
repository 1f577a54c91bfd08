"""In-memory sandbox state: customers, accounts, events, sorted indices, and the balance refresh lifecycle."""

from __future__ import annotations

import heapq
import json
import random
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.demo import BalanceProfile, generate_demo, next_balance, profile_from_doc
from stripe_sandbox.errors import ApiError, invalid, not_found
from stripe_sandbox.fixtures import FixtureError, FixtureSet, validate_fixtures
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import API_VERSION, account_doc, customer_doc

# An index entry; lists of keys are kept ascending, and pages read them from the top (newest first).
Key = tuple[int, str]

REFRESHED_BALANCE = "financial_connections.account.refreshed_balance"
DISCONNECTED = "financial_connections.account.disconnected"
CUSTOMER_CREATED = "customer.created"
REFRESH_FEATURES = ("balance", "ownership", "transactions")
# Sandbox-chosen codes where Stripe publishes none (the pipeline must not depend on them).
CODE_INACTIVE = "financial_connections_account_inactive"
CODE_MISSING_PERMISSION = "financial_connections_missing_permission"
CODE_REFRESH_TOO_SOON = "financial_connections_refresh_too_soon"

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _dumps(value)


@dataclass(slots=True)
class PageQuery:
    limit: int = 10
    created_min: int | None = None  # inclusive
    created_max: int | None = None  # inclusive
    starting_after: Key | None = None
    ending_before: Key | None = None


def paginate(lists: Iterable[list[Key]], query: PageQuery) -> tuple[list[Key], bool]:
    """One newest-first page across one or more ascending key lists: O(lists x (log n + limit))."""
    wanted = query.limit + 1
    backwards = query.ending_before is not None and query.starting_after is None
    parts: list[list[Key]] = []
    for keys in lists:
        low = 0 if query.created_min is None else bisect_left(keys, (query.created_min,))
        high = len(keys) if query.created_max is None else bisect_left(keys, (query.created_max + 1,))
        if query.starting_after is not None:
            high = min(high, bisect_left(keys, query.starting_after))
        if query.ending_before is not None:
            low = max(low, bisect_right(keys, query.ending_before))
        if low >= high:
            continue
        if backwards:
            parts.append(keys[low:min(high, low + wanted)])
        else:
            part = keys[max(low, high - wanted):high]
            part.reverse()
            parts.append(part)
    if not parts:
        return [], False
    if backwards:
        merged = parts[0] if len(parts) == 1 else list(islice(heapq.merge(*parts), wanted))
        has_more = len(merged) > query.limit
        chosen = merged[:query.limit]
        chosen.reverse()
        return chosen, has_more
    merged = parts[0] if len(parts) == 1 else list(islice(heapq.merge(*parts, reverse=True), wanted))
    return merged[:query.limit], len(merged) > query.limit


def _index_add(index: dict[Any, list[Key]], value: Any, key: Key, touched: dict[int, list[Key]] | None) -> None:
    keys = index.get(value)
    if keys is None:
        keys = index[value] = []
    _list_add(keys, key, touched)


def _list_add(keys: list[Key], key: Key, touched: dict[int, list[Key]] | None) -> None:
    if touched is not None:
        keys.append(key)
        touched[id(keys)] = keys
    elif not keys or key > keys[-1]:
        keys.append(key)
    else:
        keys.insert(bisect_left(keys, key), key)


def _list_remove(keys: list[Key] | None, key: Key) -> None:
    if keys is None:
        return
    position = bisect_left(keys, key)
    if position < len(keys) and keys[position] == key:
        del keys[position]


class CustomerRecord:
    __slots__ = ("doc", "json", "key")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.key: Key = (doc["created"], doc["id"])
        self.json: str | None = None

    def render(self) -> str:
        if self.json is None:
            self.json = dumps(self.doc)
        return self.json


@dataclass(slots=True)
class PendingRefresh:
    token: int
    due: float
    status: str
    balance: Any
    scripted: bool
    request_id: str | None
    idempotency_key: str | None


class AccountRecord:
    __slots__ = ("doc", "json", "key", "outcomes", "pending", "profile", "refresh_count", "session")

    def __init__(self, doc: dict[str, Any], outcomes: list[dict[str, Any]] | None = None,
                 profile: BalanceProfile | None = None, session: str | None = None) -> None:
        self.doc = doc
        self.key: Key = (doc["created"], doc["id"])
        self.json: str | None = None
        self.outcomes = outcomes
        self.profile = profile
        self.session = session
        self.refresh_count = 0
        self.pending: PendingRefresh | None = None

    def render(self) -> str:
        if self.json is None:
            self.json = dumps(self.doc)
        return self.json

    def set(self, field: str, value: Any) -> None:
        # Replace, never mutate nested values: earlier events and previous_attributes keep references.
        self.doc[field] = value
        self.json = None


class EventRecord:
    __slots__ = ("json", "key", "type")

    def __init__(self, key: Key, event_type: str, body: str) -> None:
        self.key = key
        self.type = event_type
        self.json = body


def _previous_attributes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """Stripe-style diff: changed top-level fields, one level deep into objects."""
    previous: dict[str, Any] = {}
    for field, old_value in old.items():
        new_value = new.get(field)
        if old_value == new_value:
            continue
        if isinstance(old_value, dict) and isinstance(new_value, dict):
            previous[field] = {k: old_value.get(k) for k in old_value.keys() | new_value.keys()
                               if old_value.get(k) != new_value.get(k)}
        else:
            previous[field] = old_value
    return previous or None


class SandboxState:
    """All objects and indices; every method runs on the server's event loop thread."""

    def __init__(self, config: SandboxConfig, ids: IdFactory, clock: Callable[[], float]) -> None:
        self.config = config
        self.ids = ids
        self.now = clock
        self.on_event: Callable[[EventRecord], None] | None = None
        self.counters: dict[str, int] = {
            "refreshes_started": 0, "refreshes_succeeded": 0, "refreshes_failed": 0, "events_emitted": 0,
        }
        self._token_seq = 0
        self.clear()

    def clear(self) -> None:
        self.customers: dict[str, CustomerRecord] = {}
        self.customer_keys: list[Key] = []
        self.customers_by_email: dict[str, list[Key]] = {}
        self.accounts: dict[str, AccountRecord] = {}
        self.account_keys: list[Key] = []
        self.accounts_by_customer: dict[str, list[Key]] = {}
        self.accounts_by_holder_account: dict[str, list[Key]] = {}
        self.accounts_by_customer_account: dict[str, list[Key]] = {}
        self.accounts_by_session: dict[str, list[Key]] = {}
        self.events: dict[str, EventRecord] = {}
        self.event_keys: list[Key] = []
        self.events_by_type: dict[str, list[Key]] = {}
        self._due: list[tuple[float, int, str]] = []

    # ---- loading -------------------------------------------------------------------------------------------

    def load_fixtures(self, data: Any) -> dict[str, int]:
        """Validate everything first (FixtureError, nothing loaded), then add or replace objects."""
        try:
            # A private copy (the caller may reuse its dicts); also refuses values JSON cannot carry.
            data = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise FixtureError(f"fixtures must be plain JSON data: {exc}") from None
        fixture_set = validate_fixtures(data, lambda customer_id: customer_id in self.customers)
        return self._apply(fixture_set)

    def _apply(self, fixture_set: FixtureSet) -> dict[str, int]:
        now = self.now()
        livemode = self.config.livemode
        touched: dict[int, list[Key]] = {}
        for spec in fixture_set.customers:
            created = spec.created if spec.created is not None else int(now)
            self._put_customer(customer_doc(spec.customer_id, created, livemode, spec.fields), touched)
        pending: list[AccountRecord] = []
        for spec in fixture_set.accounts:
            created = spec.created if spec.created is not None else int(now)
            doc = account_doc(spec.account_id, created, livemode, spec.holder, spec.fields)
            record = AccountRecord(doc, spec.outcomes, None, spec.session)
            self._put_account(record, touched)
            refresh = doc.get("balance_refresh")
            if isinstance(refresh, dict) and refresh.get("status") == "pending":
                pending.append(record)
        for keys in touched.values():
            keys.sort()
        for record in pending:
            # Loaded pending: completes one latency after loading with its first outcome.
            self._schedule(record, now, None, None)
        return {"customers": len(fixture_set.customers), "accounts": len(fixture_set.accounts)}

    def load_demo(self, n_customers: int) -> dict[str, int]:
        customers, accounts = generate_demo(n_customers, self.config.seed, self.ids, self.now(),
                                            self.config.livemode, self.config.refresh_cooldown)
        touched: dict[int, list[Key]] = {}
        for doc in customers:
            self._put_customer(doc, touched)
        for demo_account in accounts:
            self._put_account(AccountRecord(demo_account.doc, None, demo_account.profile), touched)
        for keys in touched.values():
            keys.sort()
        return {"customers": len(customers), "accounts": len(accounts)}

    def _put_customer(self, doc: dict[str, Any], touched: dict[int, list[Key]] | None) -> CustomerRecord:
        old = self.customers.get(doc["id"])
        if old is not None:
            _list_remove(self.customer_keys, old.key)
            _list_remove(self.customers_by_email.get(old.doc.get("email")), old.key)
        record = CustomerRecord(doc)
        self.customers[doc["id"]] = record
        _list_add(self.customer_keys, record.key, touched)
        email = doc.get("email")
        if isinstance(email, str):
            _index_add(self.customers_by_email, email, record.key, touched)
        return record

    def _account_indices(self, record: AccountRecord) -> list[tuple[dict[str, list[Key]], str]]:
        holder = record.doc["account_holder"]
        pairs = []
        for index, value in ((self.accounts_by_customer, holder.get("customer")),
                             (self.accounts_by_holder_account, holder.get("account")),
                             (self.accounts_by_customer_account, holder.get("customer_account")),
                             (self.accounts_by_session, record.session)):
            if value is not None:
                pairs.append((index, value))
        return pairs

    def _put_account(self, record: AccountRecord, touched: dict[int, list[Key]] | None) -> None:
        old = self.accounts.get(record.doc["id"])
        if old is not None:
            old.pending = None  # its scheduled completion is dropped
            _list_remove(self.account_keys, old.key)
            for index, value in self._account_indices(old):
                _list_remove(index.get(value), old.key)
        self.accounts[record.doc["id"]] = record
        _list_add(self.account_keys, record.key, touched)
        for index, value in self._account_indices(record):
            _index_add(index, value, record.key, touched)

    # ---- customers -----------------------------------------------------------------------------------------

    def create_customer(self, fields: dict[str, Any], request_id: str, idempotency_key: str | None) -> str:
        now = int(self.now())
        doc = customer_doc(self.ids.new("cus"), now, self.config.livemode, fields)
        record = self._put_customer(doc, None)
        self._emit(CUSTOMER_CREATED, record.render(), None, request_id, idempotency_key, now)
        return record.render()

    def customer_json(self, customer_id: str) -> str:
        record = self.customers.get(customer_id)
        if record is None:
            raise not_found("customer", customer_id)
        return record.render()

    # ---- accounts and the refresh lifecycle ---------------------------------------------------------------

    def account(self, account_id: str) -> AccountRecord:
        record = self.accounts.get(account_id)
        if record is None:
            raise not_found("financial_connections.account", account_id)
        return record

    def refresh(self, account_id: str, features: list[str], request_id: str,
                idempotency_key: str | None) -> str:
        record = self.account(account_id)
        doc = record.doc
        now = self.now()
        if doc.get("status") != "active":
            raise ApiError(400, f"The account {account_id} is {doc.get('status')} and cannot be refreshed. "
                           "Relink it to refresh its data.", code=CODE_INACTIVE)
        permissions = doc.get("permissions") or []
        for feature in features:
            needed = "balances" if feature == "balance" else feature
            if needed not in permissions:
                raise ApiError(400, f"The account {account_id} was not granted the `{needed}` permission, "
                               f"so its {feature} cannot be refreshed.", code=CODE_MISSING_PERMISSION,
                               param="features")
        if "balance" in features:
            refresh = doc.get("balance_refresh")
            status = refresh.get("status") if isinstance(refresh, dict) else None
            if status == "pending":
                return record.render()  # already refreshing: no second refresh
            available_at = refresh.get("next_refresh_available_at") if isinstance(refresh, dict) else None
            if isinstance(available_at, int | float) and now < available_at:
                raise ApiError(400, f"The balance of account {account_id} cannot be refreshed until "
                               f"{int(available_at)} (next_refresh_available_at).", code=CODE_REFRESH_TOO_SOON,
                               param="features")
        if "ownership" in features:
            record.set("ownership_refresh", {"last_attempted_at": int(now), "next_refresh_available_at": None,
                                             "status": "succeeded"})
        if "transactions" in features:
            record.set("transaction_refresh", {"id": self.ids.new("fctxnref"), "last_attempted_at": int(now),
                                               "next_refresh_available_at": None, "status": "succeeded"})
        if "balance" in features:
            record.set("balance_refresh", {"last_attempted_at": int(now), "next_refresh_available_at": None,
                                           "status": "pending"})
            self._schedule(record, now, request_id, idempotency_key)
        return record.render()

    def _schedule(self, record: AccountRecord, now: float, request_id: str | None,
                  idempotency_key: str | None) -> None:
        """Start a refresh: its outcome and latency are fixed now, from fixtures or the seed."""
        attempt = record.refresh_count
        record.refresh_count += 1
        rng = random.Random(f"{self.config.seed}:{record.doc['id']}:{attempt}")
        low, high = self.config.refresh_latency
        due = now + (low if low == high else rng.uniform(low, high))
        if record.outcomes:
            outcome = record.outcomes[min(attempt, len(record.outcomes) - 1)]
            status, balance, scripted = outcome["status"], outcome.get("balance"), True
        else:
            if record.profile is None:
                record.profile = profile_from_doc(record.doc)
            failed = record.profile.always_fail or rng.random() < self.config.refresh_failure_rate
            status = "failed" if failed else "succeeded"
            balance = None if failed else next_balance(record.doc.get("balance"), record.profile, rng)
            scripted = False
        self._token_seq += 1
        record.pending = PendingRefresh(self._token_seq, due, status, balance, scripted, request_id,
                                        idempotency_key)
        heapq.heappush(self._due, (due, self._token_seq, record.doc["id"]))
        self.counters["refreshes_started"] += 1

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def process_due(self) -> int:
        """Complete every refresh whose time has come, in due order; cheap when none is due."""
        if not self._due or self._due[0][0] > self.now():
            return 0
        now = self.now()
        completed = 0
        while self._due and self._due[0][0] <= now:
            due, token, account_id = heapq.heappop(self._due)
            record = self.accounts.get(account_id)
            if record is None or record.pending is None or record.pending.token != token:
                continue
            self._complete(record, due)
            completed += 1
        return completed

    def _complete(self, record: AccountRecord, due: float) -> None:
        pending = record.pending
        assert pending is not None
        record.pending = None
        doc = record.doc
        old = {"balance": doc.get("balance"), "balance_refresh": doc.get("balance_refresh")}
        completed_at = int(due)
        status = pending.status
        if doc.get("status") == "disconnected":
            status = "failed"  # disconnected while refreshing: nothing new to report
        if status == "succeeded":
            balance = pending.balance
            if pending.scripted:
                if isinstance(balance, dict) and "as_of" not in balance:
                    balance = {"as_of": completed_at, **balance}
            else:
                balance = self._as_of_for_generated(record, balance, completed_at)
            record.set("balance", balance)
        previous_refresh = old["balance_refresh"] if isinstance(old["balance_refresh"], dict) else {}
        record.set("balance_refresh", {
            "last_attempted_at": previous_refresh.get("last_attempted_at", completed_at),
            "next_refresh_available_at": int(due + self.config.refresh_cooldown),
            "status": status,
        })
        self.counters["refreshes_succeeded" if status == "succeeded" else "refreshes_failed"] += 1
        new = {"balance": doc.get("balance"), "balance_refresh": doc.get("balance_refresh")}
        self._emit(REFRESHED_BALANCE, record.render(), _previous_attributes(old, new), pending.request_id,
                   pending.idempotency_key, completed_at)

    @staticmethod
    def _as_of_for_generated(record: AccountRecord, balance: dict[str, Any], completed_at: int) -> Any:
        profile = record.profile
        if profile is not None and profile.daily:
            # Computed once a day by the institution: same day, same as_of, same amounts.
            as_of = completed_at - completed_at % 86_400
            previous = record.doc.get("balance")
            if isinstance(previous, dict) and previous.get("as_of") == as_of:
                return previous
        else:
            as_of = completed_at
        return {**balance, "as_of": as_of}

    def disconnect(self, account_id: str, request_id: str, idempotency_key: str | None) -> str:
        record = self.account(account_id)
        doc = record.doc
        if doc.get("status") == "disconnected":
            return record.render()
        old = {"balance": doc.get("balance"), "status": doc.get("status"),
               "status_details": doc.get("status_details")}
        record.set("status", "disconnected")
        record.set("balance", None)
        record.set("status_details", None)
        new = {"balance": None, "status": "disconnected", "status_details": None}
        self._emit(DISCONNECTED, record.render(), _previous_attributes(old, new), request_id, idempotency_key,
                   int(self.now()))
        return record.render()

    # ---- events --------------------------------------------------------------------------------------------

    def _emit(self, event_type: str, object_json: str, previous: dict[str, Any] | None,
              request_id: str | None, idempotency_key: str | None, created: int) -> EventRecord:
        event_id = self.ids.new("evt")
        webhooks = 1 if self.config.webhook_url and self.config.webhook_secret else 0
        body = (
            f'{{"id":{dumps(event_id)},"object":"event","api_version":"{API_VERSION}","created":{created},'
            f'"data":{{"object":{object_json},"previous_attributes":{dumps(previous)}}},'
            f'"livemode":{dumps(self.config.livemode)},"pending_webhooks":{webhooks},'
            f'"request":{{"id":{dumps(request_id)},"idempotency_key":{dumps(idempotency_key)}}},'
            f'"type":{dumps(event_type)}}}'
        )
        record = EventRecord((created, event_id), event_type, body)
        self.events[event_id] = record
        _list_add(self.event_keys, record.key, None)
        _index_add(self.events_by_type, event_type, record.key, None)
        self.counters["events_emitted"] += 1
        if self.on_event is not None and webhooks:
            self.on_event(record)
        return record

    def event_json(self, event_id: str) -> str:
        record = self.events.get(event_id)
        if record is None:
            raise not_found("event", event_id)
        return record.json

    def event_type_lists(self, type_pattern: str | None, types: list[str] | None) -> list[list[Key]]:
        if types is not None:
            return [self.events_by_type[t] for t in dict.fromkeys(types) if t in self.events_by_type]
        if type_pattern is None:
            return [self.event_keys]
        if "*" not in type_pattern:
            keys = self.events_by_type.get(type_pattern)
            return [keys] if keys else []
        regex = re.compile("^" + ".*".join(re.escape(part) for part in type_pattern.split("*")) + "$")
        return [keys for event_type, keys in self.events_by_type.items() if regex.match(event_type)]

    # ---- pages ---------------------------------------------------------------------------------------------

    def cursor_key(self, kind: str, object_id: Any, param: str) -> Key:
        table: dict[str, Any] = {"customer": self.customers, "financial_connections.account": self.accounts,
                                 "event": self.events}[kind]
        if not isinstance(object_id, str):
            raise invalid(f"Invalid {param}: must be an object id string", param=param)
        record = table.get(object_id)
        if record is None:
            raise ApiError(400, f"No such {kind}: '{object_id}'", param=param, code="resource_missing",
                           validation=True)
        return record.key

    def counts(self) -> dict[str, int]:
        return {"customers": len(self.customers), "accounts": len(self.accounts), "events": len(self.events),
                "refreshes_pending": sum(1 for _ in self._due)}
