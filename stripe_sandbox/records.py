"""Stored objects (customer and account records, pending refreshes), event names, and the previous_attributes diff."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.demo import BalanceProfile
from stripe_sandbox.pages import Key

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
