"""`expand[]`: check paths against the spec's x-expandableFields and replace ids by the objects they name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_sandbox.errors import ApiError, invalid

ACCOUNT = "financial_connections.account"
MAX_EXPAND_DEPTH = 4  # Stripe expands at most four levels deep

Tree = dict[str, "Tree"]
_ABSENT = object()

# kind -> expandable field -> the kind of what it holds (None: nothing inside may be expanded further).
# Taken from the vendored spec's x-expandableFields; fields that name an id become the object.
EXPANDABLE: dict[str, dict[str, str | None]] = {
    ACCOUNT: {"account_holder": "account_holder", "account_numbers": None, "balance": "balance",
              "balance_refresh": None, "ownership": "ownership", "ownership_refresh": None,
              "status_details": "status_details", "transaction_refresh": None},
    "account_holder": {"account": "account", "customer": "customer"},
    "balance": {"cash": None, "credit": None},
    "status_details": {"active": None},
    "ownership": {"owners": None},
    "account": {},
    "customer": {"address": None, "cash_balance": None, "default_source": None, "discount": None,
                 "invoice_settings": None, "shipping": None, "sources": None, "subscriptions": None, "tax": None,
                 "tax_ids": None, "test_clock": None},
    "event": {"data": None, "request": None},
    "financial_connections.account_owner": {},
    f"list:{ACCOUNT}": {"data": ACCOUNT},
    "list:customer": {"data": "customer"},
    "list:event": {"data": "event"},
    "list:financial_connections.account_owner": {"data": "financial_connections.account_owner"},
}


def expand_tree(params: dict[str, Any], kind: str) -> Tree:
    """The `expand` parameter as a tree of paths; a 400 for a path the spec does not allow."""
    raw = params.get("expand")
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(path, str) for path in raw):
        raise invalid("Invalid array: expand must be an array of strings (expand[]=...)", param="expand")
    tree: Tree = {}
    for path in raw:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH + (1 if kind.startswith("list:") else 0):
            raise ApiError(400, f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property.",
                           param="expand", validation=True)
        node, node_kind = tree, kind
        for depth, part in enumerate(parts):
            fields = EXPANDABLE.get(node_kind) if node_kind is not None else None
            if not fields or part not in fields:
                raise ApiError(400, f"This property cannot be expanded ({'.'.join(parts[:depth + 1])}).",
                               validation=True)
            node = node.setdefault(part, {})
            node_kind = fields[part]  # type: ignore[assignment]
    return tree


class Expander:
    """Applies a checked tree to an object, copying what it changes (stored objects are shared)."""

    def __init__(self, customer: Callable[[str], dict[str, Any] | None],
                 ownership: Callable[[str], dict[str, Any] | None]) -> None:
        self._customer = customer
        self._ownership = ownership

    def apply(self, kind: str, obj: dict[str, Any], tree: Tree) -> dict[str, Any]:
        if not tree:
            return obj
        out = obj
        for field, subtree in tree.items():
            target = EXPANDABLE[kind][field]
            if field == "data" and kind.startswith("list:"):
                assert target is not None
                value: Any = [self.apply(target, item, subtree) for item in obj.get("data", [])]
            else:
                value = self._resolve(kind, field, obj)
                if value is _ABSENT:
                    continue  # a field the object does not carry stays out
                if subtree and isinstance(value, dict) and target is not None:
                    value = self.apply(target, value, subtree)
            if value is not obj.get(field) or field not in obj:
                if out is obj:
                    out = dict(obj)
                out[field] = value
        return out

    def _resolve(self, kind: str, field: str, obj: dict[str, Any]) -> Any:
        value = obj.get(field, _ABSENT)
        if kind == "account_holder" and isinstance(value, str):
            if field == "customer":
                return self._customer(value) or value
            # Connect accounts are outside the sandbox: the object carries only its id.
            return {"id": value, "object": "account"}
        if kind == ACCOUNT and field == "ownership" and isinstance(value, str):
            return self._ownership(value) or value
        if kind == "customer" and field not in obj:
            return _customer_includable(field, obj)
        return value


def _customer_includable(field: str, customer: dict[str, Any]) -> Any:
    """Fields Stripe sends only when expanded; the sandbox keeps no sources, subscriptions or tax ids."""
    url = f"/v1/customers/{customer['id']}/{field}"
    if field in ("sources", "subscriptions", "tax_ids"):
        return {"object": "list", "data": [], "has_more": False, "url": url}
    if field == "tax":
        return {"automatic_tax": "unrecognized_location", "ip_address": None, "location": None,
                "provider": "stripe"}
    if field == "cash_balance":
        return None
    return _ABSENT
