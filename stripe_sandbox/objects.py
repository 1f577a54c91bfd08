"""Builders for Stripe objects in the published spec's shape: nullable fields null when empty, others left out."""

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
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
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
    # Not nullable in the spec: Stripe leaves these out rather than send null.
    for name in ("business_name", "individual_name"):
        if doc.get(name) is None:
            doc.pop(name, None)
    return doc


def account_holder(holder_type: str, customer: str | None = None, account: str | None = None,
                   customer_account: str | None = None) -> dict[str, Any]:
    """Only the ids that apply: none of `account`, `customer`, `customer_account` is nullable in the spec."""
    holder: dict[str, Any] = {}
    if account is not None:
        holder["account"] = account
    if customer is not None:
        holder["customer"] = customer
    if customer_account is not None:
        holder["customer_account"] = customer_account
    holder["type"] = holder_type
    return holder


def stripe_balance(balance: Any) -> Any:
    """A balance as Stripe sends it: the hash named by `type` always there (its amounts null when unknown),
    the other hash left out when null. What a fixture gives is otherwise kept verbatim, odd values included,
    so the pipeline's defences can be tested."""
    if not isinstance(balance, dict):
        return balance
    out = dict(balance)
    kind = balance.get("type")
    for name, inner in (("cash", "available"), ("credit", "used")):
        if kind == name:
            given = out.get(name)
            if given is None:
                out[name] = {inner: None}
            elif isinstance(given, dict) and inner not in given:
                out[name] = {**given, inner: None}
        elif name in out and out[name] is None:
            del out[name]
    return out


def supported_payment_method_types(category: Any) -> list[str]:
    return ["link", "us_bank_account"] if category == "cash" else []


def account_doc(account_id: str, created: int, livemode: bool, holder: dict[str, Any],
                given: dict[str, Any]) -> dict[str, Any]:
    category = given.get("category", "cash")
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
        "status": given.get("status", "active"),
        "subcategory": "other",
        "subscriptions": [],
        "supported_payment_method_types": supported_payment_method_types(category),
        "transaction_refresh": None,
    }
    doc.update(given)
    doc["id"] = account_id
    doc["created"] = created
    doc["account_holder"] = account_holder(holder["type"], holder.get("customer"), holder.get("account"),
                                           holder.get("customer_account"))
    if doc.get("status_details") is None:
        doc.pop("status_details", None)  # not nullable: only sent when there is something to say
    refresh = doc.get("balance_refresh")
    doc["balance"] = stripe_balance(doc.get("balance"))
    if isinstance(refresh, dict):
        doc["balance_refresh"] = {
            # Required and not nullable: a fixture that leaves it out gets the account's creation time.
            "last_attempted_at": refresh.get("last_attempted_at", created) or created,
            "next_refresh_available_at": refresh.get("next_refresh_available_at"),
            "status": refresh.get("status"),
            **{k: v for k, v in refresh.items()
               if k not in ("last_attempted_at", "next_refresh_available_at", "status")},
        }
    return doc
