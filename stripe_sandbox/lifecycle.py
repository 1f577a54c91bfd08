"""The refresh lifecycle (balance, ownership, transactions), subscriptions and disconnects: a mixin of the state."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.demo import FAILING_INSTITUTION, next_balance, profile_from_doc
from stripe_sandbox.errors import ApiError
from stripe_sandbox.events import EventRecord, EventStore
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import stripe_balance
from stripe_sandbox.ownership import OwnershipStore, default_owners
from stripe_sandbox.records import (
    CODE_INACTIVE,
    CODE_MISSING_PERMISSION,
    CODE_REFRESH_TOO_SOON,
    DISCONNECTED,
    REFRESH_FIELD,
    REFRESHED,
    REFRESHED_BALANCE,
    AccountRecord,
    CustomerRecord,
    PendingRefresh,
    _previous_attributes,
)


class RefreshLifecycle:
    """Refreshes start `pending`, take their outcome when they start, and complete in due order."""

    config: SandboxConfig
    ids: IdFactory
    now: Callable[[], float]
    accounts: dict[str, AccountRecord]
    customers: dict[str, CustomerRecord]
    ownerships: OwnershipStore
    event_store: EventStore
    counters: dict[str, int]
    _due: list[tuple[float, int, str, str]]
    _token_seq: int
    # From ScheduledChanges (stripe_sandbox/schedule.py), the other half of the state.
    next_change: Callable[[float], int | None]
    apply_next_change: Callable[[], None]

    def account(self, account_id: str) -> AccountRecord:
        raise NotImplementedError

    def _emit(self, event_type: str, object_json: str, previous: dict[str, Any] | None,
              request_id: str | None, idempotency_key: str | None, created: int) -> EventRecord:
        raise NotImplementedError

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
        now = self.now()
        change_at = self.next_change(now)
        if change_at is None and (not self._due or self._due[0][0] > now):
            return 0
        completed = 0
        while change_at is not None or (self._due and self._due[0][0] <= now):
            if change_at is not None and (not self._due or change_at <= self._due[0][0]):
                self.apply_next_change()  # a fixture's scheduled change, in time order with the refreshes
                change_at = self.next_change(now)
                continue
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

    def disconnect(self, account_id: str, request_id: str | None, idempotency_key: str | None,
                   created: int | None = None) -> AccountRecord:
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
                   int(self.now()) if created is None else created)
        return record
