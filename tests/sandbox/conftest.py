"""Helpers for the sandbox tests: SDK and raw HTTP clients, fixture builders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from stripe_sandbox import Sandbox


def sdk(sandbox: Sandbox, retries: int = 0, key: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(key or sandbox.api_key, base_addresses={"api": sandbox.base_url},
                               max_network_retries=retries)


@pytest.fixture
def raw() -> Iterator[Any]:
    """A factory of httpx clients authenticated against a sandbox (for headers and exact wire checks)."""
    clients: list[httpx.Client] = []

    def make(sandbox: Sandbox, key: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=sandbox.base_url, timeout=10,
                              headers={"Authorization": f"Bearer {key or sandbox.api_key}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def customer(customer_id: str, created: int = 1_764_000_000, **fields: Any) -> dict[str, Any]:
    return {"id": customer_id, "created": created, "email": f"{customer_id}@example.com", **fields}


def account(account_id: str, customer_id: str, created: int = 1_764_000_000, **fields: Any) -> dict[str, Any]:
    base = {"id": account_id, "customer": customer_id, "institution_name": "StripeBank", "category": "cash",
            "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
            "created": created, "balance": None, "balance_refresh": None}
    return {**base, **fields}


def cash_balance(current: int, available: int | None = None, currency: str = "usd", **extra: Any) -> dict:
    return {"type": "cash", "current": {currency: current},
            "cash": {"available": {currency: current if available is None else available}}, **extra}
