"""Builders for Stripe objects with every field present (null when empty), keys in Stripe's order."""

from __future__ import annotations

from typing import Any

API_VERSION = "2026-10-28.endive"

ACCOUNT_OBJECT = "financial_connections.account"


def customer_doc(customer_id: str, created: int, livemode: bool, given: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        "invoice_prefix": None,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": livemode,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    doc.update(given)
    doc["id"] = customer_id
    doc["created"] = created
    return doc


def account_holder(holder_type: str, customer: str | None = None, account: str | None = None,
                   customer_account: str | None = None) -> dict[str, Any]:
    return {"account": account, "customer": customer, "customer_account": customer_account, "type": holder_type}


def supported_payment_method_types(category: Any) -> list[str]:
    return ["link", "us_bank_account"] if category == "cash" else []


def account_doc(account_id: str, created: int, livemode: bool, holder: dict[str, Any],
                given: dict[str, Any]) -> dict[str, Any]:
    category = given.get("category", "cash")
    status = given.get("status", "active")
    doc: dict[str, Any] = {
        "id": account_id,
        "object": ACCOUNT_OBJECT,
        "account_holder": holder,
        "account_numbers": None,
        "balance": None,
        "balance_refresh": None,
        "category": category,
        "created": created,
        "display_name": None,
        "institution_name": "StripeBank",
        "last4": None,
        "livemode": livemode,
        "ownership": None,
        "ownership_refresh": None,
        "permissions": [],
        "status": status,
        "status_details": {"inactive": {"action": "relink_required"}} if status == "inactive" else None,
        "subcategory": "other",
        "subscriptions": [],
        "supported_payment_method_types": supported_payment_method_types(category),
        "transaction_refresh": None,
    }
    doc.update(given)
    doc["id"] = account_id
    doc["created"] = created
    doc["account_holder"] = holder
    refresh = doc.get("balance_refresh")
    if isinstance(refresh, dict):
        doc["balance_refresh"] = {
            "last_attempted_at": refresh.get("last_attempted_at"),
            "next_refresh_available_at": refresh.get("next_refresh_available_at"),
            "status": refresh.get("status"),
            **{k: v for k, v in refresh.items()
               if k not in ("last_attempted_at", "next_refresh_available_at", "status")},
        }
    return doc
