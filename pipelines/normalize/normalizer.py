"""Turns Stripe Financial Connections account dicts into the contract's Arrow tables (pure functions)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract.schema import arrow_schema
from pipelines.contract.tables import BALANCE_TYPES, INGEST_TABLES, REFRESH_OUTCOMES
from pipelines.normalize.account_numbers import best_account_number_status, expected_deactivation_date
from pipelines.normalize.currencies import ISO_4217_CODES, minor_unit_exponent

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
AMOUNT_DECIMAL = pa.decimal128(38, 4)
AMOUNT_SCALE = 4

# The contract's Arrow schemas, generated from the one declaration of each table.
FC_ACCOUNTS_SCHEMA = arrow_schema("fc_accounts")
FC_BALANCES_SCHEMA = arrow_schema("fc_balances")
FC_BALANCE_REFRESHES_SCHEMA = arrow_schema("fc_balance_refreshes")
FC_REJECTED_BALANCES_SCHEMA = arrow_schema("fc_rejected_balances")
SCHEMAS: dict[str, pa.Schema] = {name: arrow_schema(name) for name in INGEST_TABLES}

# Reject reasons: short, fixed, machine-groupable.
MISSING_ACCOUNT_ID = "missing_account_id"
BALANCE_NOT_OBJECT = "balance_not_object"
INVALID_AS_OF = "invalid_as_of"
UNKNOWN_BALANCE_TYPE = "unknown_balance_type"
INVALID_AMOUNT_MAP = "invalid_amount_map"
CASH_WITH_CREDIT_USED = "cash_with_credit_used"
CREDIT_WITH_CASH_AVAILABLE = "credit_with_cash_available"
UNKNOWN_CURRENCY = "unknown_currency"
AMOUNT_NOT_INTEGER = "amount_not_integer"
AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
REJECT_REASONS = frozenset(
    {
        MISSING_ACCOUNT_ID, BALANCE_NOT_OBJECT, INVALID_AS_OF, UNKNOWN_BALANCE_TYPE, INVALID_AMOUNT_MAP,
        CASH_WITH_CREDIT_USED, CREDIT_WITH_CASH_AVAILABLE, UNKNOWN_CURRENCY, AMOUNT_NOT_INTEGER,
        AMOUNT_OUT_OF_RANGE,
    }
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Unix seconds accepted as timestamps: 1970-01-01 .. 9999-12-31T23:59:59Z (Python, pandas and the
# YYYY-MM-DD partition names all handle that range).
MAX_UNIX_SECONDS = 253_402_300_799
_MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_EXPONENTS: dict[str, int] = {code: minor_unit_exponent(code) for code in ISO_4217_CODES}
_MISSING = object()


class BalanceTables(NamedTuple):
    """The two tables `normalize_balances` produces."""

    balances: pa.Table
    rejected: pa.Table


# ---------------------------------------------------------------------------------------------- helpers


def _datetime_micros(value: datetime, name: str) -> int:
    """Microseconds since the epoch of a timezone-aware datetime (naive ones are a caller bug)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return (value - _EPOCH) // _ONE_MICROSECOND


def _unix_seconds(value: Any) -> int | None:
    """`value` if it is an int (not a bool) of unix seconds in the accepted range, else None."""
    if type(value) is int and 0 <= value <= MAX_UNIX_SECONDS:
        return value
    return None


def _seconds_to_timestamps(seconds: list[int | None]) -> pa.Array:
    """Unix seconds (None for null) -> timestamp[us, UTC], the scaling done in Arrow."""
    micros = pc.multiply_checked(pa.array(seconds, pa.int64()), pa.scalar(_MICROS, pa.int64()))
    return micros.cast(UTC_TIMESTAMP)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reinterpret_scale(values: pa.Array) -> pa.Array:
    """View a decimal128 array's unscaled integers as decimal128(38, 4), without touching the data."""
    return pa.Array.from_buffers(
        AMOUNT_DECIMAL, len(values), values.buffers(), null_count=values.null_count, offset=values.offset
    )


def minor_to_major(minor: pa.Array, exponents: pa.Array) -> pa.Array:
    """Exact minor / 10**exponent as decimal128(38, 4), in Arrow, never through float.

    Casting int64 to decimal128(38, 4 - e) stores the unscaled integer minor * 10**(4 - e) exactly (it fits
    in 38 digits); read with scale 4 that integer is minor / 10**e. One cast per distinct exponent, then a
    per-row pick.
    """
    minor = minor.cast(pa.int64())
    result = _reinterpret_scale(minor.cast(pa.decimal128(38, AMOUNT_SCALE - 2)))
    if len(minor) == 0:
        return result
    for exponent in (0, 3):
        mask = pc.equal(exponents, pa.scalar(exponent, exponents.type))
        if not pc.any(mask).as_py():
            continue
        scaled = _reinterpret_scale(minor.cast(pa.decimal128(38, AMOUNT_SCALE - exponent)))
        result = pc.if_else(mask, scaled, result)
    return result


def _payload_json(balance: Any) -> str | None:
    """The raw balance as compact JSON with sorted keys; never raises."""
    if balance is None:
        return None
    try:
        return json.dumps(balance, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    except (TypeError, ValueError):
        # Mixed key types or NaN: keep something a human can read rather than lose the row.
        return json.dumps(repr(balance))


# ---------------------------------------------------------------------------------------------- accounts

def normalize_accounts(accounts: Sequence[Mapping[str, Any]], observed_at: datetime) -> pa.Table:
    """One fc_accounts row per account dict with a string id (a repeated id keeps its last occurrence)."""
    observed_us = _datetime_micros(observed_at, "observed_at")
    latest: dict[str, Mapping[str, Any]] = {}
    for account in accounts:
        if not isinstance(account, Mapping):
            continue
        account_id = account.get("id")
        if isinstance(account_id, str) and account_id:
            latest.pop(account_id, None)  # re-insert so the order follows the last occurrence
            latest[account_id] = account

    columns: dict[str, list[Any]] = {field.name: [] for field in FC_ACCOUNTS_SCHEMA}
    created: list[int | None] = []
    attempted: list[int | None] = []
    next_available: list[int | None] = []
    deactivation: list[int | None] = []
    for account_id, account in latest.items():
        holder = account.get("account_holder")
        holder_type = _str_or_none(holder.get("type")) if isinstance(holder, Mapping) else None
        customer_id = (
            _str_or_none(holder.get("customer"))
            if isinstance(holder, Mapping) and holder_type == "customer"
            else None
        )
        permissions = account.get("permissions")
        refresh = account.get("balance_refresh")
        if not isinstance(refresh, Mapping):
            refresh = {}
        livemode = account.get("livemode")
        columns["account_id"].append(account_id)
        columns["customer_id"].append(customer_id)
        columns["account_holder_type"].append(holder_type)
        for name in ("institution_name", "display_name", "last4", "category", "subcategory", "status"):
            columns[name].append(_str_or_none(account.get(name)))
        columns["permissions"].append(
            [p for p in permissions if isinstance(p, str)] if isinstance(permissions, list | tuple) else None
        )
        columns["livemode"].append(livemode if isinstance(livemode, bool) else None)
        created.append(_unix_seconds(account.get("created")))
        columns["balance_refresh_status"].append(_str_or_none(refresh.get("status")))
        attempted.append(_unix_seconds(refresh.get("last_attempted_at")))
        next_available.append(_unix_seconds(refresh.get("next_refresh_available_at")))
        deactivation.append(_unix_seconds(expected_deactivation_date(account)))
        columns["account_numbers_status"].append(best_account_number_status(account.get("account_numbers")))

    arrays: dict[str, pa.Array] = {}
    for field in FC_ACCOUNTS_SCHEMA:
        if field.name in ("created_at", "balance_refresh_last_attempted_at", "next_refresh_available_at",
                          "expected_deactivation_at"):
            continue
        if field.name == "observed_at":
            arrays[field.name] = pa.repeat(pa.scalar(observed_us, pa.int64()), len(latest)).cast(UTC_TIMESTAMP)
        elif field.name == "access_stopped_at":
            # This observation's time when it shows access stopped; the upsert keeps an earlier stop's time.
            stopped = [observed_us if status in ("inactive", "disconnected") else None for status in columns["status"]]
            arrays[field.name] = pa.array(stopped, pa.int64()).cast(UTC_TIMESTAMP)
        else:
            arrays[field.name] = pa.array(columns[field.name], field.type)
    arrays["created_at"] = _seconds_to_timestamps(created)
    arrays["balance_refresh_last_attempted_at"] = _seconds_to_timestamps(attempted)
    arrays["next_refresh_available_at"] = _seconds_to_timestamps(next_available)
    arrays["expected_deactivation_at"] = _seconds_to_timestamps(deactivation)
    return pa.Table.from_arrays([arrays[f.name] for f in FC_ACCOUNTS_SCHEMA], schema=FC_ACCOUNTS_SCHEMA)


# ---------------------------------------------------------------------------------------------- balances


class _Rejects:
    """Column lists of fc_rejected_balances, filled row by row."""

    def __init__(self) -> None:
        self.account_id: list[str | None] = []
        self.as_of: list[int | None] = []
        self.currency: list[str | None] = []
        self.reason: list[str] = []
        self.payload: list[str | None] = []

    def add(self, account_id: str | None, as_of: int | None, currency: str | None, reason: str,
            payload: str | None) -> None:
        self.account_id.append(account_id)
        self.as_of.append(as_of)
        self.currency.append(currency)
        self.reason.append(reason)
        self.payload.append(payload)

    def table(self, fetched_us: int) -> pa.Table:
        count = len(self.reason)
        return pa.Table.from_arrays(
            [
                pa.array(self.account_id, pa.string()),
                _seconds_to_timestamps(self.as_of),
                pa.array(self.currency, pa.string()),
                pa.array(self.reason, pa.string()),
                pa.array(self.payload, pa.string()),
                pa.repeat(pa.scalar(fetched_us, pa.int64()), count).cast(UTC_TIMESTAMP),
            ],
            schema=FC_REJECTED_BALANCES_SCHEMA,
        )


def _amount_problem(value: Any) -> str | None:
    """The reject reason for one amount of a map, or None when it is a valid int64."""
    if type(value) is not int:  # bools are ints in Python, not in Stripe's schema
        return AMOUNT_NOT_INTEGER
    if value < INT64_MIN or value > INT64_MAX:
        return AMOUNT_OUT_OF_RANGE
    return None


def _balance_shape(balance: Mapping[str, Any]) -> tuple[str | None, Mapping | None, Mapping | None]:
    """(reject reason or None, current map, the type's own sub-map) of a balance with a valid type."""
    balance_type = balance.get("type")
    current = balance.get("current")
    if current is not None and not isinstance(current, Mapping):
        return INVALID_AMOUNT_MAP, None, None
    sub_maps: dict[str, Mapping | None] = {}
    for hash_name, map_name in (("cash", "available"), ("credit", "used")):
        sub_hash = balance.get(hash_name)
        if sub_hash is None:
            sub_maps[hash_name] = None
            continue
        if not isinstance(sub_hash, Mapping):
            return INVALID_AMOUNT_MAP, None, None
        amounts = sub_hash.get(map_name)
        if amounts is not None and not isinstance(amounts, Mapping):
            return INVALID_AMOUNT_MAP, None, None
        sub_maps[hash_name] = amounts
    # An empty foreign map carries no amount, so it does not break "cash rows carry no used".
    if balance_type == "cash" and sub_maps["credit"]:
        return CASH_WITH_CREDIT_USED, None, None
    if balance_type == "credit" and sub_maps["cash"]:
        return CREDIT_WITH_CASH_AVAILABLE, None, None
    return None, current, sub_maps[balance_type]


def normalize_balances(accounts: Sequence[Mapping[str, Any]], fetched_at: datetime) -> BalanceTables:
    """fc_balances rows (one per account and currency of its balance) and the rows rejected, never raising.

    Balance-level faults give one reject row with a null currency; currency-level faults one row per
    currency. Within one call a repeated (account_id, as_of, currency) keeps its first row.
    """
    fetched_us = _datetime_micros(fetched_at, "fetched_at")
    rejects = _Rejects()
    account_ids: list[str] = []
    customer_ids: list[str | None] = []
    balance_types: list[str] = []
    currencies: list[str] = []
    as_ofs: list[int] = []
    current_minor: list[int | None] = []
    side_minor: list[int | None] = []  # available for cash rows, used for credit rows
    exponents: list[int] = []
    seen: set[tuple[str, int, str]] = set()
    exponent_of = _EXPONENTS.get

    for account in accounts:
        if not isinstance(account, Mapping):
            rejects.add(None, None, None, MISSING_ACCOUNT_ID, None)
            continue
        balance = account.get("balance")
        account_id = account.get("id")
        if not isinstance(account_id, str) or not account_id:
            as_of = _unix_seconds(balance.get("as_of")) if isinstance(balance, Mapping) else None
            rejects.add(None, as_of, None, MISSING_ACCOUNT_ID, _payload_json(balance))
            continue
        if balance is None:
            continue
        if not isinstance(balance, Mapping):
            rejects.add(account_id, None, None, BALANCE_NOT_OBJECT, _payload_json(balance))
            continue
        as_of = _unix_seconds(balance.get("as_of"))
        if as_of is None:
            rejects.add(account_id, None, None, INVALID_AS_OF, _payload_json(balance))
            continue
        balance_type = balance.get("type")
        if balance_type not in BALANCE_TYPES:
            rejects.add(account_id, as_of, None, UNKNOWN_BALANCE_TYPE, _payload_json(balance))
            continue
        problem, current, side = _balance_shape(balance)
        if problem is not None:
            rejects.add(account_id, as_of, None, problem, _payload_json(balance))
            continue

        holder = account.get("account_holder")
        customer_id = None
        if isinstance(holder, Mapping) and holder.get("type") == "customer":
            customer_id = _str_or_none(holder.get("customer"))
        keys = list(current) if current else []
        if side:
            keys.extend(key for key in side if not (current and key in current))
        payload: str | None = None
        for currency in keys:
            exponent = exponent_of(currency) if isinstance(currency, str) else None
            reason = None
            current_value = current.get(currency, _MISSING) if current else _MISSING
            side_value = side.get(currency, _MISSING) if side else _MISSING
            if exponent is None:
                reason = UNKNOWN_CURRENCY
            else:
                for value in (current_value, side_value):
                    if value is not _MISSING:
                        reason = _amount_problem(value)
                        if reason:
                            break
            if reason is not None:
                if payload is None:
                    payload = _payload_json(balance)
                rejects.add(account_id, as_of, str(currency), reason, payload)
                continue
            key = (account_id, as_of, currency)
            if key in seen:
                continue
            seen.add(key)
            account_ids.append(account_id)
            customer_ids.append(customer_id)
            balance_types.append(balance_type)
            currencies.append(currency)
            as_ofs.append(as_of)
            current_minor.append(None if current_value is _MISSING else current_value)
            side_minor.append(None if side_value is _MISSING else side_value)
            exponents.append(exponent)

    row_count = len(account_ids)
    type_array = pa.array(balance_types, pa.string())
    is_cash = pc.equal(type_array, "cash")
    side_array = pa.array(side_minor, pa.int64())
    null_int = pa.nulls(row_count, pa.int64())
    available_minor = pc.if_else(is_cash, side_array, null_int)
    used_minor = pc.if_else(is_cash, null_int, side_array)
    current_array = pa.array(current_minor, pa.int64())
    exponent_array = pa.array(exponents, pa.int8())
    balances = pa.Table.from_arrays(
        [
            pa.array(account_ids, pa.string()),
            pa.array(customer_ids, pa.string()),
            type_array,
            pa.array(currencies, pa.string()),
            _seconds_to_timestamps(as_ofs),
            current_array,
            available_minor,
            used_minor,
            minor_to_major(current_array, exponent_array),
            minor_to_major(available_minor, exponent_array),
            minor_to_major(used_minor, exponent_array),
            pa.repeat(pa.scalar(fetched_us, pa.int64()), row_count).cast(UTC_TIMESTAMP),
        ],
        schema=FC_BALANCES_SCHEMA,
    )
    return BalanceTables(balances=balances, rejected=rejects.table(fetched_us))


# ---------------------------------------------------------------------------------------------- refreshes


def _record_micros(value: Any, field: str) -> int | None:
    """Unix seconds (int or float) or an aware datetime -> microseconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _datetime_micros(value, field)
    if type(value) is int:
        return value * _MICROS
    if type(value) is float and math.isfinite(value):
        return round(value * _MICROS)
    raise ValueError(f"refresh record field {field} must be unix seconds or None, got {value!r}")


def refreshes_table(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """fc_balance_refreshes rows from the engine's records; a repeated (run_id, account_id) keeps the last.

    These records come from our own engine, so a malformed one is a bug: ValueError with one clear line.
    """
    rows: dict[tuple[str, str], list[Any]] = {}
    for record in records:
        run_id, account_id, outcome = record.get("run_id"), record.get("account_id"), record.get("outcome")
        if not isinstance(run_id, str) or not run_id or not isinstance(account_id, str) or not account_id:
            raise ValueError(f"refresh record needs string run_id and account_id, got {run_id!r}, {account_id!r}")
        if outcome not in REFRESH_OUTCOMES:
            raise ValueError(f"refresh record for {account_id} has unknown outcome {outcome!r}")
        for field in ("status", "error_code"):
            if record.get(field) is not None and not isinstance(record.get(field), str):
                raise ValueError(f"refresh record field {field} must be a string or None")
        rows.pop((run_id, account_id), None)
        rows[(run_id, account_id)] = [
            run_id,
            account_id,
            outcome,
            _record_micros(record.get("requested_at"), "requested_at"),
            _record_micros(record.get("completed_at"), "completed_at"),
            record.get("status"),
            _record_micros(record.get("next_refresh_available_at"), "next_refresh_available_at"),
            record.get("error_code"),
        ]
    columns = list(zip(*rows.values(), strict=True)) if rows else [[] for _ in FC_BALANCE_REFRESHES_SCHEMA]
    arrays = []
    for field, values in zip(FC_BALANCE_REFRESHES_SCHEMA, columns, strict=True):
        if field.type == UTC_TIMESTAMP:
            arrays.append(pa.array(list(values), pa.int64()).cast(UTC_TIMESTAMP))
        else:
            arrays.append(pa.array(list(values), field.type))
    return pa.Table.from_arrays(arrays, schema=FC_BALANCE_REFRESHES_SCHEMA)
