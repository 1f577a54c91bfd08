"""In-memory sandbox state: customers, accounts and their indices, loading, account status changes and events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.demo import generate_demo
from stripe_sandbox.errors import ApiError, invalid, not_found
from stripe_sandbox.events import EventRecord, EventStore
from stripe_sandbox.fixtures import FixtureError, FixtureSet, validate_fixtures
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.lifecycle import RefreshLifecycle
from stripe_sandbox.objects import account_doc, customer_doc
from stripe_sandbox.ownership import OwnershipStore
from stripe_sandbox.pages import Key, PageQuery, _index_add, _list_add, _list_remove, paginate
from stripe_sandbox.records import (
    ACCOUNT_CREATED,
    CUSTOMER_CREATED,
    DEACTIVATED,
    REACTIVATED,
    REFRESH_FEATURES,
    REFRESH_FIELD,
    SUBSCRIBE_FEATURES,
    AccountRecord,
    CustomerRecord,
    dumps,
)
from stripe_sandbox.schedule import ScheduledChanges

__all__ = ["REFRESH_FEATURES", "SUBSCRIBE_FEATURES", "AccountRecord", "CustomerRecord", "Key", "PageQuery",
           "SandboxState", "dumps", "paginate"]


class SandboxState(RefreshLifecycle, ScheduledChanges):
    """All objects and indices; every method runs on the server's event loop thread."""

    def __init__(self, config: SandboxConfig, ids: IdFactory, clock: Callable[[], float]) -> None:
        self.config = config
        self.ids = ids
        self.now = clock
        self.on_event: Callable[[EventRecord], None] | None = None
        self.counters: dict[str, int] = {
            "refreshes_started": 0, "refreshes_succeeded": 0, "refreshes_failed": 0, "events_emitted": 0,
            "scheduled_events": 0, "scheduled_skipped": 0,
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
        self._scheduled: list[tuple[int, int, str, int]] = []  # (at, seq, account id, entry index)
        self._schedules: dict[str, tuple[AccountRecord, list[dict[str, Any]]]] = {}
        self._schedule_seq = 0

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
            self._schedule_account(record, spec.schedule)
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
