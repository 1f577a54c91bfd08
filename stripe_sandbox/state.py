"""In-memory sandbox state: customers, accounts and their indices, the refresh lifecycle, and account events."""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.demo import FAILING_INSTITUTION, BalanceProfile, generate_demo, next_balance, profile_from_doc
from stripe_sandbox.errors import ApiError, invalid, not_found
from stripe_sandbox.events import EventRecord, EventStore
from stripe_sandbox.fixtures import FixtureError, FixtureSet, validate_fixtures
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import account_doc, customer_doc, stripe_balance
from stripe_sandbox.ownership import OwnershipStore, default_owners
from stripe_sandbox.pages import Key, PageQuery, _index_add, _list_add, _list_remove, paginate

__all__ = ["Key", "PageQuery", "SandboxState", "dumps", "paginate"]

ACCOUNT_EVENT = "financial_connections.account."
REFRESHED_BALANCE = ACCOUNT_EVENT + "refreshed_balance"
REFRESHED = {"balance": REFRESHED_BALANCE, "ownership": ACCOUNT_EVENT + "refreshed_ownership",
             "transactions": ACCOUNT_EVENT + "refreshed_transactions"}
REFRESH_FIELD = {"balance": "balance_refresh", "ownership": "ownership_refresh",
                 "transactions": "transaction_refresh"}
ACCOUNT_CREATED = ACCOUNT_EVENT + "created"
DEACTIVATED = ACCOUNT_EVENT + "deactivated"
REACTIVATED = ACCOUNT_EVENT + "reactivated"
DISCONNECTED = ACCOUNT_EVENT + "disconnected"
CUSTOMER_CREATED = "customer.created"
REFRESH_FEATURES = ("balance", "ownership", "transactions")
SUBSCRIBE_FEATURES = ("transactions",)
# Sandbox-chosen codes where Stripe publishes none (the pipeline must not depend on them).
CODE_INACTIVE = "financial_connections_account_inactive"
CODE_MISSING_PERMISSION = "financial_connections_missing_permission"
CODE_REFRESH_TOO_SOON = "financial_connections_refresh_too_soon"

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _dumps(value)


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
    feature: str
    due: float
    status: str
    balance: Any
    scripted: bool
    request_id: str | None
    idempotency_key: str | None


class AccountRecord:
    __slots__ = ("doc", "json", "key", "outcomes", "owners", "pending", "profile", "refresh_count", "session")

    def __init__(self, doc: dict[str, Any], outcomes: list[dict[str, Any]] | None = None,
                 profile: BalanceProfile | None = None, session: str | None = None,
                 owners: list[dict[str, Any]] | None = None) -> None:
        self.doc = doc
        self.key: Key = (doc["created"], doc["id"])
        self.json: str | None = None
        self.outcomes = outcomes
        self.owners = owners
        self.profile = profile
        self.session = session
        self.refresh_count = 0
        self.pending: dict[str, PendingRefresh] = {}  # feature -> the refresh running now

    def render(self) -> str:
        if self.json is None:
            self.json = dumps(self.doc)
        return self.json

    def set(self, field: str, value: Any) -> None:
        # Replace, never mutate nested values: earlier events and previous_attributes keep references.
        self.doc[field] = value
        self.json = None


def _previous_attributes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """Stripe-style diff: changed top-level fields, one level deep into objects."""
    previous: dict[str, Any] = {}
    for name, old_value in old.items():
        new_value = new.get(name)
        if old_value == new_value:
            continue
        if isinstance(old_value, dict) and isinstance(new_value, dict):
            # Keys the old value lacked are left out: null is not a value those fields may take.
            previous[name] = {k: v for k, v in old_value.items() if v != new_value.get(k)}
        else:
            previous[name] = old_value
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
        self.event_store = EventStore(ids, clock)
        self.ownerships = OwnershipStore(ids)
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
        self.customers_by_test_clock: dict[str, list[Key]] = {}
        self.event_store.clear()
        self.ownerships.clear()
        self._due: list[tuple[float, int, str, str]] = []

    # ---- loading -------------------------------------------------------------------------------------------

    def load_fixtures(self, data: Any, emit_events: bool = False) -> dict[str, int]:
        """Validate everything first (FixtureError, nothing loaded), then add or replace objects.

        With `emit_events` (the admin HTTP API), a new account emits `.created`, and a replaced one whose
        status goes active -> inactive or back emits `.deactivated` / `.reactivated`.
        """
        try:
            # A private copy (the caller may reuse its dicts); also refuses values JSON cannot carry.
            data = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise FixtureError(f"fixtures must be plain JSON data: {exc}") from None
        fixture_set = validate_fixtures(data, lambda customer_id: customer_id in self.customers)
        return self._apply(fixture_set, emit_events)

    def _apply(self, fixture_set: FixtureSet, emit_events: bool) -> dict[str, int]:
        now = self.now()
        livemode = self.config.livemode
        touched: dict[int, list[Key]] = {}
        for spec in fixture_set.customers:
            created = spec.created if spec.created is not None else int(now)
            self._put_customer(customer_doc(spec.customer_id, created, livemode, spec.fields), touched)
        pending: list[tuple[AccountRecord, str]] = []
        changes: list[tuple[AccountRecord, str | None]] = []
        for spec in fixture_set.accounts:
            created = spec.created if spec.created is not None else int(now)
            doc = account_doc(spec.account_id, created, livemode, spec.holder, spec.fields)
            old = self.accounts.get(spec.account_id)
            record = AccountRecord(doc, spec.outcomes, None, spec.session, spec.owners)
            self._put_account(record, touched)
            changes.append((record, old.doc.get("status") if old is not None else None))
            for feature, name in REFRESH_FIELD.items():
                refresh = doc.get(name)
                if isinstance(refresh, dict) and refresh.get("status") == "pending":
                    pending.append((record, feature))
        for keys in touched.values():
            keys.sort()
        for record, feature in pending:
            # Loaded pending: completes one latency after loading (a balance with its first outcome).
            self._schedule(record, feature, now, None, None)
        if emit_events:
            for record, old_status in changes:
                self._emit_status_change(record, old_status, int(now))
        return {"customers": len(fixture_set.customers), "accounts": len(fixture_set.accounts)}

    def _emit_status_change(self, record: AccountRecord, old_status: str | None, now: int) -> None:
        status = record.doc.get("status")
        if old_status is None:
            self._emit(ACCOUNT_CREATED, record.render(), None, None, None, now)
        elif old_status == "active" and status == "inactive":
            self._emit(DEACTIVATED, record.render(), {"status": old_status}, None, None, now)
        elif old_status == "inactive" and status == "active":
            self._emit(REACTIVATED, record.render(), {"status": old_status}, None, None, now)

    def set_status(self, account_id: str, status: Any) -> AccountRecord:
        """Admin action: an institution deactivates an account or it comes back (events as Stripe sends them)."""
        record = self.account(account_id)
        old_status = record.doc.get("status")
        if status not in ("active", "inactive"):
            raise ValueError(f"status must be 'active' or 'inactive', not {status!r}")
        if old_status == "disconnected":
            raise ValueError(f"account {account_id} is disconnected: a disconnected account stays disconnected")
        if status != old_status:
            record.set("status", status)
            if status == "inactive":
                record.doc.pop("status_details", None)  # `active` details only describe active accounts
            self._emit_status_change(record, old_status, int(self.now()))
        return record

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

    def _customer_indices(self, record: CustomerRecord) -> list[tuple[dict[str, list[Key]], str]]:
        return [(index, value) for index, value in ((self.customers_by_email, record.doc.get("email")),
                                                    (self.customers_by_test_clock, record.doc.get("test_clock")))
                if isinstance(value, str)]

    def _put_customer(self, doc: dict[str, Any], touched: dict[int, list[Key]] | None) -> CustomerRecord:
        old = self.customers.get(doc["id"])
        if old is not None:
            _list_remove(self.customer_keys, old.key)
            for index, value in self._customer_indices(old):
                _list_remove(index.get(value), old.key)
        record = CustomerRecord(doc)
        self.customers[doc["id"]] = record
        _list_add(self.customer_keys, record.key, touched)
        for index, value in self._customer_indices(record):
            _index_add(index, value, record.key, touched)
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
            old.pending = {}  # its scheduled completions are dropped
            _list_remove(self.account_keys, old.key)
            for index, value in self._account_indices(old):
                _list_remove(index.get(value), old.key)
        self.accounts[record.doc["id"]] = record
        _list_add(self.account_keys, record.key, touched)
        for index, value in self._account_indices(record):
            _index_add(index, value, record.key, touched)

    # ---- customers -----------------------------------------------------------------------------------------

    def create_customer(self, fields: dict[str, Any], request_id: str, idempotency_key: str | None
                        ) -> CustomerRecord:
        now = int(self.now())
        doc = customer_doc(self.ids.new("cus"), now, self.config.livemode, fields)
        record = self._put_customer(doc, None)
        self._emit(CUSTOMER_CREATED, record.render(), None, request_id, idempotency_key, now)
        return record

    def customer(self, customer_id: str) -> CustomerRecord:
        record = self.customers.get(customer_id)
        if record is None:
            raise not_found("customer", customer_id)
        return record

    # ---- accounts and the refresh lifecycle ---------------------------------------------------------------

    def account(self, account_id: str) -> AccountRecord:
        record = self.accounts.get(account_id)
        if record is None:
            raise not_found("financial_connections.account", account_id)
        return record

    def _check_can_refresh(self, record: AccountRecord, features: list[str], verb: str) -> None:
        doc = record.doc
        account_id = doc["id"]
        if doc.get("status") != "active":
            raise ApiError(400, f"The account {account_id} is {doc.get('status')} and cannot be {verb}. "
                           "Relink it to refresh its data.", code=CODE_INACTIVE)
        permissions = doc.get("permissions") or []
        for feature in features:
            needed = "balances" if feature == "balance" else feature
            if needed not in permissions:
                raise ApiError(400, f"The account {account_id} was not granted the `{needed}` permission, "
                               f"so its {feature} cannot be {verb}.", code=CODE_MISSING_PERMISSION,
                               param="features")

    def refresh(self, account_id: str, features: list[str], request_id: str,
                idempotency_key: str | None) -> AccountRecord:
        record = self.account(account_id)
        doc = record.doc
        now = self.now()
        self._check_can_refresh(record, features, "refreshed")
        starting = []
        for feature in features:
            refresh = doc.get(REFRESH_FIELD[feature])
            if feature in record.pending:
                continue  # already refreshing: no second refresh
            available_at = refresh.get("next_refresh_available_at") if isinstance(refresh, dict) else None
            if isinstance(available_at, int | float) and now < available_at:
                raise ApiError(400, f"The {feature} of account {account_id} cannot be refreshed until "
                               f"{int(available_at)} ({REFRESH_FIELD[feature]}.next_refresh_available_at).",
                               code=CODE_REFRESH_TOO_SOON, param="features")
            starting.append(feature)
        for feature in starting:
            self._start(record, feature, now, request_id, idempotency_key)
        return record

    def _start(self, record: AccountRecord, feature: str, now: float, request_id: str | None,
               idempotency_key: str | None) -> None:
        pending = {"last_attempted_at": int(now), "next_refresh_available_at": None, "status": "pending"}
        if feature == "transactions":
            pending = {"id": self.ids.new("fctxnref"), **pending}
        record.set(REFRESH_FIELD[feature], pending)
        self._schedule(record, feature, now, request_id, idempotency_key)

    def subscribe(self, account_id: str, features: list[str], request_id: str,
                  idempotency_key: str | None) -> AccountRecord:
        """Subscribe to transactions: kept in `subscriptions`, and a transaction refresh starts at once."""
        record = self.account(account_id)
        self._check_can_refresh(record, features, "subscribed to")
        subscriptions = record.doc.get("subscriptions") or []
        added = [feature for feature in features if feature not in subscriptions]
        if added:
            record.set("subscriptions", [*subscriptions, *added])
            for feature in added:
                if feature not in record.pending:
                    self._start(record, feature, self.now(), request_id, idempotency_key)
        return record

    def unsubscribe(self, account_id: str, features: list[str]) -> AccountRecord:
        record = self.account(account_id)
        subscriptions = record.doc.get("subscriptions") or []
        if any(feature in subscriptions for feature in features):
            record.set("subscriptions", [s for s in subscriptions if s not in features])
        return record

    def _schedule(self, record: AccountRecord, feature: str, now: float, request_id: str | None,
                  idempotency_key: str | None) -> None:
        """Start a refresh: its outcome and latency are fixed now, from fixtures or the seed."""
        if record.profile is None:
            record.profile = profile_from_doc(record.doc)
        low, high = self.config.refresh_latency
        scripted = False
        balance = None
        if feature == "balance":
            attempt = record.refresh_count
            record.refresh_count += 1
            rng = random.Random(f"{self.config.seed}:{record.doc['id']}:{attempt}")
            due = now + (low if low == high else rng.uniform(low, high))
            if record.outcomes:
                outcome = record.outcomes[min(attempt, len(record.outcomes) - 1)]
                status, balance, scripted = outcome["status"], outcome.get("balance"), True
            else:
                failed = record.profile.always_fail or rng.random() < self.config.refresh_failure_rate
                status = "failed" if failed else "succeeded"
                balance = None if failed else next_balance(record.doc.get("balance"), record.profile, rng)
        else:
            # Ownership and transactions: only the failing institution fails them.
            rng = random.Random(f"{self.config.seed}:{record.doc['id']}:{feature}:{self._token_seq}")
            due = now + (low if low == high else rng.uniform(low, high))
            status = "failed" if record.doc.get("institution_name") == FAILING_INSTITUTION else "succeeded"
        self._token_seq += 1
        record.pending[feature] = PendingRefresh(self._token_seq, feature, due, status, balance, scripted,
                                                 request_id, idempotency_key)
        heapq.heappush(self._due, (due, self._token_seq, record.doc["id"], feature))
        if feature == "balance":
            self.counters["refreshes_started"] += 1

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def process_due(self) -> int:
        """Complete every refresh whose time has come, in due order, and expire old events; cheap otherwise."""
        if self.event_store.keys:
            self.event_store.expire()
        if not self._due or self._due[0][0] > self.now():
            return 0
        now = self.now()
        completed = 0
        while self._due and self._due[0][0] <= now:
            due, token, account_id, feature = heapq.heappop(self._due)
            record = self.accounts.get(account_id)
            pending = record.pending.get(feature) if record is not None else None
            if record is None or pending is None or pending.token != token:
                continue
            del record.pending[feature]
            if feature == "balance":
                self._complete_balance(record, pending, due)
            else:
                self._complete_other(record, pending, due)
            completed += 1
        self.event_store.expire()  # an event dated in the past may already be out of the 30 days
        return completed

    def _complete_balance(self, record: AccountRecord, pending: PendingRefresh, due: float) -> None:
        doc = record.doc
        old = {"balance": doc.get("balance"), "balance_refresh": doc.get("balance_refresh")}
        completed_at = int(due)
        status = pending.status
        if doc.get("status") != "active":
            status = "failed"  # deactivated or disconnected while refreshing: nothing new to report
        if status == "succeeded":
            balance = pending.balance
            if pending.scripted:
                if isinstance(balance, dict) and "as_of" not in balance:
                    balance = {"as_of": completed_at, **balance}
            else:
                balance = self._as_of_for_generated(record, balance, completed_at)
            record.set("balance", stripe_balance(balance))
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

    def _complete_other(self, record: AccountRecord, pending: PendingRefresh, due: float) -> None:
        doc = record.doc
        name = REFRESH_FIELD[pending.feature]
        completed_at = int(due)
        status = pending.status if doc.get("status") == "active" else "failed"
        started = doc.get(name) if isinstance(doc.get(name), dict) else {}
        old = {name: doc.get(name)}
        if pending.feature == "ownership" and status == "succeeded":
            old["ownership"] = doc.get("ownership")
            holder = doc["account_holder"].get("customer")
            customer = self.customers.get(holder) if isinstance(holder, str) else None
            owners = record.owners or default_owners(customer.doc if customer else None, doc)
            record.set("ownership", self.ownerships.create(doc["id"], completed_at, owners).id)
        refresh = {**started, "last_attempted_at": started.get("last_attempted_at", completed_at),
                   "next_refresh_available_at": int(due + self.config.refresh_cooldown), "status": status}
        record.set(name, refresh)
        new = {key: doc.get(key) for key in old}
        self._emit(REFRESHED[pending.feature], record.render(), _previous_attributes(old, new),
                   pending.request_id, pending.idempotency_key, completed_at)

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

    def disconnect(self, account_id: str, request_id: str, idempotency_key: str | None) -> AccountRecord:
        record = self.account(account_id)
        doc = record.doc
        if doc.get("status") == "disconnected":
            return record
        old = {"balance": doc.get("balance"), "status": doc.get("status"),
               "subscriptions": doc.get("subscriptions")}
        record.set("status", "disconnected")
        record.set("balance", None)
        record.set("subscriptions", [])  # no data flows after a disconnect
        if "status_details" in doc:
            old["status_details"] = doc.pop("status_details")
        new = {"balance": None, "status": "disconnected", "subscriptions": []}
        self._emit(DISCONNECTED, record.render(), _previous_attributes(old, new), request_id, idempotency_key,
                   int(self.now()))
        return record

    # ---- events --------------------------------------------------------------------------------------------

    def _emit(self, event_type: str, object_json: str, previous: dict[str, Any] | None,
              request_id: str | None, idempotency_key: str | None, created: int) -> EventRecord:
        webhooks = 1 if self.config.webhook_url and self.config.webhook_secret else 0
        record = self.event_store.emit(event_type, object_json, previous, request_id, idempotency_key, created,
                                       self.config.livemode, webhooks)
        self.counters["events_emitted"] += 1
        if self.on_event is not None and webhooks:
            self.on_event(record)
        return record

    # ---- pages ---------------------------------------------------------------------------------------------

    def cursor_key(self, kind: str, object_id: Any, param: str) -> Key:
        table: dict[str, Any] = {"customer": self.customers, "financial_connections.account": self.accounts,
                                 "event": self.event_store.events}[kind]
        if not isinstance(object_id, str):
            raise invalid(f"Invalid {param}: must be an object id string", param=param)
        record = table.get(object_id)
        if record is None:
            # An expired event is gone: a cursor naming it is answered like one naming an id never seen.
            raise ApiError(400, f"No such {kind}: '{object_id}'", param=param, code="resource_missing",
                           validation=True)
        return record.key

    def counts(self) -> dict[str, int]:
        return {"customers": len(self.customers), "accounts": len(self.accounts),
                "events": len(self.event_store), "events_expired": self.event_store.expired,
                "refreshes_pending": sum(len(record.pending) for record in self.accounts.values())}
