"""`POST /v1/customers`: every parameter the spec documents, checked and turned into customer fields."""

from __future__ import annotations

from typing import Any

from stripe_sandbox.errors import invalid, unknown_param

# The request body's documented parameters (vendored spec, PostCustomers); anything else is refused.
CREATE_PARAMS = frozenset({
    "address", "balance", "business_name", "cash_balance", "description", "email", "expand", "individual_name",
    "invoice_prefix", "invoice_settings", "metadata", "name", "next_invoice_sequence", "payment_method", "phone",
    "preferred_locales", "shipping", "source", "tax", "tax_exempt", "tax_id_data", "test_clock",
})
ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
SHIPPING_KEYS = ("address", "name", "phone")
INVOICE_SETTINGS_KEYS = ("custom_fields", "default_payment_method", "footer", "rendering_options")
TAX_EXEMPT = ("", "exempt", "none", "reverse")
# Accepted and checked for shape, but the sandbox keeps no payment methods, sources, tax ids or tax
# locations: Stripe's object would show them only through other endpoints or expansions.
ACCEPTED_ONLY = ("cash_balance", "payment_method", "source", "tax", "tax_id_data")


def _string(params: dict[str, Any], name: str, max_length: int) -> str:
    value = params[name]
    if not isinstance(value, str):
        raise invalid(f"Invalid {name}: must be a string", param=name)
    if len(value) > max_length:
        raise invalid(f"Invalid {name}: must be at most {max_length} characters", param=name)
    return value


def _integer(value: Any, name: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) < 19:
        return int(value)
    raise invalid(f"Invalid integer: {str(value)[:100]}", param=name)


def _hash(value: Any, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {name}", param=name)
    for key in value:
        if key not in keys:
            raise unknown_param(f"{name}[{key}]")
    return value


def _address(value: Any, name: str) -> dict[str, Any] | None:
    if value == "":
        return None
    given = _hash(value, name, ADDRESS_KEYS)
    for key, part in given.items():
        if not isinstance(part, str):
            raise invalid(f"Invalid {name}[{key}]: must be a string", param=f"{name}[{key}]")
    return {key: given.get(key) or None for key in ADDRESS_KEYS}


def customer_fields(params: dict[str, Any]) -> dict[str, Any]:
    """Check the body of a customer create; return the fields to store (a 400 names the first bad one)."""
    for name in params:
        if name not in CREATE_PARAMS:
            raise unknown_param(name)
    fields: dict[str, Any] = {}
    for name, limit in (("description", 5000), ("email", 512), ("name", 256), ("phone", 20),
                        ("invoice_prefix", 5000), ("test_clock", 5000), ("business_name", 150),
                        ("individual_name", 150)):
        if name in params:
            fields[name] = _string(params, name, limit) or None
    if fields.get("email") and "@" not in fields["email"]:
        raise invalid(f"Invalid email address: {fields['email'][:100]}", param="email", code="email_invalid")
    prefix = fields.get("invoice_prefix")
    if prefix is not None and not (3 <= len(prefix) <= 12 and prefix.isalnum() and prefix.upper() == prefix):
        raise invalid("Invalid invoice_prefix: 3-12 uppercase letters or numbers", param="invoice_prefix")
    for name in ("balance", "next_invoice_sequence"):
        if name in params:
            fields[name] = _integer(params[name], name)
    if fields.get("next_invoice_sequence", 1) < 1:
        raise invalid("next_invoice_sequence must be 1 or more", param="next_invoice_sequence")
    metadata = params.get("metadata", {})
    if metadata == "":
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise invalid("Invalid metadata: must be a hash of strings", param="metadata")
    fields["metadata"] = metadata
    if "address" in params:
        fields["address"] = _address(params["address"], "address")
    if "shipping" in params:
        fields["shipping"] = _shipping(params["shipping"])
    if "preferred_locales" in params:
        locales = params["preferred_locales"]
        if locales == "":
            locales = []
        if not isinstance(locales, list) or not all(isinstance(v, str) for v in locales):
            raise invalid("Invalid array: preferred_locales", param="preferred_locales")
        fields["preferred_locales"] = locales
    if "tax_exempt" in params:
        if params["tax_exempt"] not in TAX_EXEMPT:
            raise invalid(f"Invalid tax_exempt: must be one of {', '.join(TAX_EXEMPT[1:])}", param="tax_exempt")
        fields["tax_exempt"] = params["tax_exempt"] or "none"
    if "invoice_settings" in params:
        fields["invoice_settings"] = _invoice_settings(params["invoice_settings"])
    for name in ACCEPTED_ONLY:
        value = params.get(name)
        if name in ("cash_balance", "tax") and value is not None and not isinstance(value, dict):
            raise invalid(f"Invalid hash: {name}", param=name)
        if name == "tax_id_data" and value is not None and not isinstance(value, list):
            raise invalid(f"Invalid array: {name}", param=name)
    return fields


def _shipping(value: Any) -> dict[str, Any] | None:
    if value == "":
        return None
    given = _hash(value, "shipping", SHIPPING_KEYS)
    if not isinstance(given.get("name"), str) or not given["name"]:
        raise invalid("Missing required param: shipping[name].", param="shipping[name]", code="parameter_missing")
    if "address" not in given:
        raise invalid("Missing required param: shipping[address].", param="shipping[address]",
                      code="parameter_missing")
    return {"address": _address(given["address"], "shipping[address]"), "carrier": None, "name": given["name"],
            "phone": given.get("phone") or None, "tracking_number": None}


def _invoice_settings(value: Any) -> dict[str, Any]:
    given = _hash(value, "invoice_settings", INVOICE_SETTINGS_KEYS)
    settings: dict[str, Any] = {"custom_fields": None, "default_payment_method": None, "footer": None,
                                "rendering_options": None}
    fields = given.get("custom_fields")
    if fields not in (None, ""):
        if not isinstance(fields, list) or not all(
                isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("value"), str)
                and set(f) <= {"name", "value"} for f in fields):
            raise invalid("Invalid array: invoice_settings[custom_fields] needs name and value",
                          param="invoice_settings[custom_fields]")
        settings["custom_fields"] = [{"name": f["name"], "value": f["value"]} for f in fields]
    for key in ("default_payment_method", "footer"):
        if key in given:
            if not isinstance(given[key], str):
                raise invalid(f"Invalid invoice_settings[{key}]: must be a string", param=f"invoice_settings[{key}]")
            settings[key] = given[key] or None
    options = given.get("rendering_options")
    if options not in (None, ""):
        if not isinstance(options, dict):
            raise invalid("Invalid hash: invoice_settings[rendering_options]",
                          param="invoice_settings[rendering_options]")
        settings["rendering_options"] = {"amount_tax_display": options.get("amount_tax_display") or None,
                                         "template": options.get("template") or None}
    return settings
