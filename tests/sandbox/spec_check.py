"""Check recorded sandbox responses against Stripe's vendored OpenAPI spec, with the OpenAPI 3.0 rules, strictly."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).parent / "spec" / "fc_spec_fragment.json"
# What an event's data.object may be, by its `object`: the schema that describes it.
OBJECT_SCHEMAS = {"financial_connections.account": "financial_connections.account", "customer": "customer"}
ERROR_SCHEMA = {"$ref": "#/components/schemas/error"}


def _strict(node: Any) -> None:
    """Tighten the spec for checking (never the file): an object schema that lists its properties allows no
    others, and `nullable` next to `anyOf` admits null (openapi-schema-validator checks `nullable` only
    beside `type`)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        if node.get("nullable") is True and "anyOf" in node:
            node["anyOf"] = [*node["anyOf"], {"type": "string", "nullable": True, "enum": [None]}]
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)


# Where API version endive (2026-09-30, the version stripe-python 16.1.0 pins and the sandbox serves) differs from
# the vendored dahlia fragment, as Stripe's changelog documents it: account_numbers[].status gains pending and
# expired. Applied in memory; the vendored file stays byte-for-byte Stripe's.
ENDIVE_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("bank_connections_resource_account_number_details", "status"): ("pending", "expired"),
}


def _endive(spec: dict[str, Any]) -> None:
    for (schema, prop), added in ENDIVE_ENUMS.items():
        enum = spec["components"]["schemas"][schema]["properties"][prop]["enum"]
        enum.extend(value for value in added if value not in enum)


@cache
def strict_spec() -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    strict = copy.deepcopy(spec)
    _endive(strict)
    _strict(strict["components"])
    _strict(strict["paths"])
    return strict


@cache
def event_types() -> frozenset[str]:
    """Every event type the spec names (the enum of a webhook endpoint's enabled_events)."""
    body = strict_spec()["paths"]["/v1/webhook_endpoints/{webhook_endpoint}"]["post"]["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    return frozenset(schema["properties"]["enabled_events"]["items"]["enum"]) - {"*"}


@cache
def _operations() -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    operations = []
    for template, methods in strict_spec()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$")
        for method, operation in methods.items():
            operations.append((method.upper(), pattern, template, operation))
    return operations


# The fragment leaves out retrieving a customer; Stripe's spec answers it with the customer schema.
CUSTOMER_RETRIEVE = ("/v1/customers/{customer}", {"responses": {"200": {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/customer"}}}}}})
_CUSTOMER_PATH = re.compile(r"^/v1/customers/[^/]+/?$")


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(spec path template, operation) answering `method path`, or None for a URL the spec does not have."""
    for op_method, pattern, template, operation in _operations():
        if op_method == method and pattern.match(path):
            return template, operation
    if method == "GET" and _CUSTOMER_PATH.match(path):
        return CUSTOMER_RETRIEVE
    return None


@cache
def _partial_components() -> dict[str, Any]:
    """The strict components with nothing required: previous_attributes holds only what changed, at every
    level (Stripe diffs nested hashes key by key)."""
    components = copy.deepcopy(strict_spec()["components"])

    def drop(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("required", None)
            for value in node.values():
                drop(value)
        elif isinstance(node, list):
            for value in node:
                drop(value)

    drop(components)
    return components


def _validate(schema: dict[str, Any], instance: Any, where: str, partial: bool = False) -> list[str]:
    root = {**schema, "components": _partial_components() if partial else strict_spec()["components"]}
    return [f"{where}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:300]}"
            for error in OAS30Validator(root).iter_errors(instance)]


def _event_problems(event: dict[str, Any], where: str) -> list[str]:
    """data.object against its own schema (the spec leaves it open), previous_attributes as a partial one."""
    problems = []
    if event.get("type") not in event_types():
        problems.append(f"{where}: event type {event.get('type')!r} is not one the spec names")
    data = event.get("data") or {}
    obj = data.get("object") or {}
    name = OBJECT_SCHEMAS.get(obj.get("object"))
    if name is None:
        return [*problems, f"{where}: data.object is an unexpected {obj.get('object')!r}"]
    problems += _validate({"$ref": f"#/components/schemas/{name}"}, obj, f"{where} data.object")
    if "previous_attributes" in data:
        problems += _validate({"$ref": f"#/components/schemas/{name}"}, data["previous_attributes"],
                              f"{where} data.previous_attributes", partial=True)
    return problems


def check_response(method: str, path: str, status: int, body: bytes) -> list[str]:
    """Every way this response differs from what the spec allows (empty when it conforms)."""
    where = f"{method} {path} -> {status}"
    try:
        document = json.loads(body)
    except ValueError:
        return [f"{where}: body is not JSON"]
    found = operation_for(method, path)
    if status != 200:
        return _validate(ERROR_SCHEMA, document, where)
    if found is None:
        return [f"{where}: a 200 for an operation the spec does not have"]
    template, operation = found
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    problems = _validate(schema, document, where)
    if template == "/v1/events/{id}":
        problems += _event_problems(document, where)
    elif template == "/v1/events":
        for position, event in enumerate(document.get("data", [])):
            problems += _event_problems(event, f"{where} data[{position}]")
    return problems


def operation_key(method: str, path: str, status: int) -> tuple[str, str, int]:
    found = operation_for(method, path)
    return method, found[0] if found else "(unknown URL)", status
