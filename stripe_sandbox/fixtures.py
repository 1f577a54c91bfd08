"""Validate fixture documents (the DESIGN.md format) before anything is loaded; FixtureError names the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripe_sandbox import schedule as health

ACCOUNT_STATUSES = ("active", "inactive", "disconnected")
REFRESH_STATUSES = ("pending", "succeeded", "failed")
OUTCOME_STATUSES = ("succeeded", "failed")
HOLDER_TYPES = ("customer", "account")
# Keys of the fixture format that are not fields of the Stripe object.
ACCOUNT_FIXTURE_ONLY = ("customer", "refresh_outcomes", "session", "owners", "schedule")


class FixtureError(ValueError):
    """A fixture document or file that cannot be loaded; the message names the problem and where."""


@dataclass(slots=True)
class CustomerSpec:
    customer_id: str
    created: int | None
    fields: dict[str, Any]


@dataclass(slots=True)
class AccountSpec:
    account_id: str
    created: int | None
    holder: dict[str, Any]
    fields: dict[str, Any]
    outcomes: list[dict[str, Any]] | None
    session: str | None
    owners: list[dict[str, Any]] | None = None
    schedule: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class FixtureSet:
    customers: list[CustomerSpec]
    accounts: list[AccountSpec]


def load_fixtures_file(path: str | Path) -> dict[str, Any]:
    """Read and parse a fixtures file, checking its shape; FixtureError on any problem."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixtureError(f"fixtures file {file_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(f"fixtures file {file_path} cannot be read: {exc.__class__.__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(
            f"fixtures file {file_path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    validate_fixtures(data, lambda _customer_id: True)
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_id(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FixtureError(f"{where}: 'id' must be a non-empty string, not {value!r}")
    return value


def validate_fixtures(data: Any, customer_exists: Callable[[str], bool]) -> FixtureSet:
    """Check a fixture document; `customer_exists` tells whether an id is already loaded."""
    if not isinstance(data, dict):
        raise FixtureError(
            f"fixtures must be a JSON object with 'customers' and/or 'accounts', not {type(data).__name__}"
        )
    unknown = sorted(set(data) - {"customers", "accounts"})
    if unknown:
        raise FixtureError(f"fixtures: unknown top-level key {unknown[0]!r} (expected 'customers', 'accounts')")
    raw_customers = data.get("customers") or []
    raw_accounts = data.get("accounts") or []
    for name, value in (("customers", raw_customers), ("accounts", raw_accounts)):
        if not isinstance(value, list):
            raise FixtureError(f"fixtures: '{name}' must be a list, not {type(value).__name__}")

    customers: list[CustomerSpec] = []
    customer_ids: set[str] = set()
    for index, raw in enumerate(raw_customers):
        where = f"customers[{index}]"
        if not isinstance(raw, dict):
            raise FixtureError(f"{where}: must be an object, not {type(raw).__name__}")
        customer_id = _check_id(where, raw.get("id"))
        where = f"{where} ({customer_id})"
        if customer_id in customer_ids:
            raise FixtureError(f"{where}: duplicate customer id")
        customer_ids.add(customer_id)
        created = raw.get("created")
        if created is not None and not _is_int(created):
            raise FixtureError(f"{where}: 'created' must be an integer unix time, not {created!r}")
        email = raw.get("email")
        if email is not None and not isinstance(email, str):
            raise FixtureError(f"{where}: 'email' must be a string or null, not {email!r}")
        fields = {k: v for k, v in raw.items() if k not in ("id", "created")}
        customers.append(CustomerSpec(customer_id, created, fields))

    accounts: list[AccountSpec] = []
    account_ids: set[str] = set()
    for index, raw in enumerate(raw_accounts):
        accounts.append(_account_spec(index, raw, account_ids, customer_ids, customer_exists))
    return FixtureSet(customers, accounts)


def _account_spec(index: int, raw: Any, account_ids: set[str], customer_ids: set[str],
                  customer_exists: Callable[[str], bool]) -> AccountSpec:
    where = f"accounts[{index}]"
    if not isinstance(raw, dict):
        raise FixtureError(f"{where}: must be an object, not {type(raw).__name__}")
    account_id = _check_id(where, raw.get("id"))
    where = f"{where} ({account_id})"
    if account_id in account_ids:
        raise FixtureError(f"{where}: duplicate account id")
    account_ids.add(account_id)

    holder = _holder(where, raw)
    customer_id = holder.get("customer")
    if customer_id is not None and customer_id not in customer_ids and not customer_exists(customer_id):
        raise FixtureError(f"{where}: customer {customer_id!r} is neither in the fixtures nor already loaded")

    created = raw.get("created")
    if created is not None and not _is_int(created):
        raise FixtureError(f"{where}: 'created' must be an integer unix time, not {created!r}")
    status = raw.get("status", "active")
    if status not in ACCOUNT_STATUSES:
        raise FixtureError(f"{where}: unknown status {status!r} (expected {', '.join(ACCOUNT_STATUSES)})")
    permissions = raw.get("permissions", [])
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise FixtureError(f"{where}: 'permissions' must be a list of strings, not {permissions!r}")
    refresh = raw.get("balance_refresh")
    if refresh is not None:
        if not isinstance(refresh, dict):
            raise FixtureError(f"{where}: 'balance_refresh' must be an object or null")
        if refresh.get("status") not in REFRESH_STATUSES:
            raise FixtureError(
                f"{where}: unknown balance_refresh.status {refresh.get('status')!r} "
                f"(expected {', '.join(REFRESH_STATUSES)})"
            )
        for key in ("last_attempted_at", "next_refresh_available_at"):
            if refresh.get(key) is not None and not _is_int(refresh.get(key)):
                raise FixtureError(f"{where}: balance_refresh.{key} must be an integer unix time or null")
    outcomes = raw.get("refresh_outcomes")
    if outcomes is not None:
        if not isinstance(outcomes, list) or not outcomes:
            raise FixtureError(f"{where}: 'refresh_outcomes' must be a non-empty list (or left out)")
        for position, outcome in enumerate(outcomes):
            if not isinstance(outcome, dict):
                raise FixtureError(f"{where}: refresh_outcomes[{position}] must be an object")
            if outcome.get("status") not in OUTCOME_STATUSES:
                raise FixtureError(
                    f"{where}: refresh_outcomes[{position}] has unknown status {outcome.get('status')!r} "
                    f"(expected {', '.join(OUTCOME_STATUSES)})"
                )
    session = raw.get("session")
    if session is not None and not isinstance(session, str):
        raise FixtureError(f"{where}: 'session' must be a string")
    owners = raw.get("owners")
    if owners is not None:
        if not isinstance(owners, list):
            raise FixtureError(f"{where}: 'owners' must be a list of owners (name, email, phone, raw_address)")
        for position, owner in enumerate(owners):
            if not isinstance(owner, dict) or not isinstance(owner.get("name"), str) or not owner["name"]:
                raise FixtureError(f"{where}: owners[{position}] must be an object with a non-empty 'name'")
            for key, value in owner.items():
                if key not in ("name", "email", "phone", "raw_address"):
                    raise FixtureError(f"{where}: owners[{position}] has unknown key {key!r}")
                if value is not None and not isinstance(value, str):
                    raise FixtureError(f"{where}: owners[{position}].{key} must be a string or null")
    fields = {k: v for k, v in raw.items() if k not in ACCOUNT_FIXTURE_ONLY and k not in ("id", "created")}
    fields.pop("account_holder", None)
    try:
        if "status_details" in fields:
            fields["status_details"] = health.status_details(fields["status_details"])
        if "account_numbers" in fields:
            fields["account_numbers"] = health.account_numbers(fields["account_numbers"])
        scheduled = health.schedule(raw.get("schedule"))
    except health.ScheduleError as exc:
        raise FixtureError(f"{where}: {exc}") from None
    return AccountSpec(account_id, created, holder, fields, outcomes, session, owners, scheduled)


def _holder(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    shorthand = raw.get("customer")
    given = raw.get("account_holder")
    if shorthand is not None and not isinstance(shorthand, str):
        raise FixtureError(f"{where}: 'customer' must be a customer id string")
    if given is None:
        if shorthand is None:
            raise FixtureError(f"{where}: needs 'customer' or 'account_holder'")
        return {"account": None, "customer": shorthand, "customer_account": None, "type": "customer"}
    if not isinstance(given, dict):
        raise FixtureError(f"{where}: 'account_holder' must be an object")
    holder_type = given.get("type", "customer" if given.get("customer") else None)
    if holder_type not in HOLDER_TYPES:
        raise FixtureError(f"{where}: unknown account_holder.type {holder_type!r} (expected customer or account)")
    holder = {"account": given.get("account"), "customer": given.get("customer"),
              "customer_account": given.get("customer_account"), "type": holder_type}
    for key in ("account", "customer", "customer_account"):
        if holder[key] is not None and not isinstance(holder[key], str):
            raise FixtureError(f"{where}: account_holder.{key} must be a string or null")
    if shorthand is not None:
        if holder_type != "customer" or (holder["customer"] is not None and holder["customer"] != shorthand):
            raise FixtureError(
                f"{where}: 'customer' {shorthand!r} conflicts with account_holder "
                f"(type {holder_type!r}, customer {holder['customer']!r})"
            )
        holder["customer"] = shorthand
    if holder_type == "customer" and not holder["customer"]:
        raise FixtureError(f"{where}: account_holder of type customer needs a customer id")
    if holder_type == "account" and not holder["account"]:
        raise FixtureError(f"{where}: account_holder of type account needs an account id")
    return holder
