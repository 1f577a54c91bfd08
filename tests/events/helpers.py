"""Builders for Stripe-shaped events and signed deliveries, plus warehouse readers, for the events tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
import stripe

SECRET = "whsec_eventsTestSecret0123456789abcdef"
T0 = 1_764_000_000


def account(account_id: str = "fca_1", customer: str = "cus_A", status: str = "active",
            balance: dict[str, Any] | None = None, refresh_status: str | None = None) -> dict[str, Any]:
    """A Financial Connections account object as Stripe renders it (the fields our normalizers read)."""
    return {
        "id": account_id, "object": "financial_connections.account",
        "account_holder": {"type": "customer", "customer": customer},
        "balance": balance,
        "balance_refresh": (
            None if refresh_status is None
            else {"status": refresh_status, "last_attempted_at": T0 + 50, "next_refresh_available_at": T0 + 3650}
        ),
        "category": "cash", "subcategory": "checking", "created": T0, "display_name": "Checking",
        "institution_name": "StripeBank", "last4": "6789", "livemode": False,
        "permissions": ["balances", "payment_method"], "status": status, "status_details": None,
    }


def event(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id, "object": "event", "api_version": "2026-10-28.endive", "created": created,
        "data": {"object": obj, "previous_attributes": None}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": f"financial_connections.account.{event_type}"
        if "." not in event_type else event_type,
    }


def signed(payload: dict[str, Any] | str, secret: str = SECRET, timestamp: int | None = None) -> tuple[bytes, dict]:
    """(body, headers) as Stripe would deliver them, signed with stripe-python's own helper."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def published_rows(warehouse: Path, table: str, columns: str, order_by: str) -> list[tuple[Any, ...]]:
    """Rows of a table read back from its current Iceberg snapshot through the catalog."""
    from tests.iceberg_tables import iceberg_rows

    return iceberg_rows(warehouse, table, columns, order_by)
