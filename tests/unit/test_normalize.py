"""Unit tests of the normalizer: account/balance dicts in, contract Arrow tables out (expected values by hand)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from pipelines.normalize.currencies import ISO_4217_CODES, minor_unit_exponent
from pipelines.normalize.normalizer import (
    FC_ACCOUNTS_SCHEMA,
    FC_BALANCE_REFRESHES_SCHEMA,
    FC_BALANCES_SCHEMA,
    FC_REJECTED_BALANCES_SCHEMA,
    REJECT_REASONS,
    SCHEMAS,
    minor_to_major,
    normalize_accounts,
    normalize_balances,
    refreshes_table,
)

FETCHED = datetime(2025, 11, 26, 12, 0, 0, tzinfo=UTC)
AS_OF = 1764100000  # 2025-11-25T19:46:40Z
AS_OF_DT = datetime(2025, 11, 25, 19, 46, 40, tzinfo=UTC)


def account(balance: Any, account_id: Any = "fca_1", holder: dict[str, Any] | None = None,
            **fields: Any) -> dict[str, Any]:
    holder = holder if holder is not None else {"type": "customer", "customer": "cus_A"}
    return {"id": account_id, "object": "financial_connections.account", "account_holder": holder,
            "balance": balance, **fields}


def cash(current: Any, available: Any = None, as_of: Any = AS_OF, **extra: Any) -> dict[str, Any]:
    return {"as_of": as_of, "type": "cash", "current": current,
            "cash": {"available": available}, "credit": None, **extra}


def credit(current: Any, used: Any = None, as_of: Any = AS_OF, **extra: Any) -> dict[str, Any]:
    return {"as_of": as_of, "type": "credit", "current": current,
            "cash": None, "credit": {"used": used}, **extra}


def rows_by_currency(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["currency"]: row for row in table.to_pylist()}


# ---------------------------------------------------------------------------------------------- currencies


def test_currency_exponents_follow_stripe() -> None:
    assert minor_unit_exponent("usd") == 2
    assert minor_unit_exponent("jpy") == 0
    assert minor_unit_exponent("krw") == 0
    assert minor_unit_exponent("kwd") == 3
    assert minor_unit_exponent("isk") == 2  # ISO says 0; Stripe uses 2
    assert {"usd", "eur", "jpy", "kwd", "xcg"} <= ISO_4217_CODES
    assert "undefined" not in ISO_4217_CODES
    assert all(code == code.lower() and len(code) == 3 for code in ISO_4217_CODES)


# ---------------------------------------------------------------------------------------------- balances


def test_cash_multi_currency_positive_and_negative() -> None:
    out = normalize_balances(
        [account(cash({"usd": 6000, "eur": -125}, {"usd": 5000, "gbp": 7}))], FETCHED
    )
    assert out.rejected.num_rows == 0
    rows = rows_by_currency(out.balances)
    assert set(rows) == {"usd", "eur", "gbp"}  # union of current and cash.available keys
    usd, eur, gbp = rows["usd"], rows["eur"], rows["gbp"]
    assert (usd["current_minor"], usd["available_minor"], usd["used_minor"]) == (6000, 5000, None)
    assert (usd["current"], usd["available"], usd["used"]) == (Decimal("60.00"), Decimal("50.00"), None)
    assert (eur["current_minor"], eur["available_minor"]) == (-125, None)
    assert eur["current"] == Decimal("-1.25")
    assert (gbp["current_minor"], gbp["available_minor"], gbp["available"]) == (None, 7, Decimal("0.07"))
    for row in rows.values():
        assert row["account_id"] == "fca_1"
        assert row["customer_id"] == "cus_A"
        assert row["balance_type"] == "cash"
        assert row["as_of"] == AS_OF_DT
        assert row["fetched_at"] == FETCHED


def test_credit_keeps_stripe_sign() -> None:
    out = normalize_balances([account(credit({"usd": -50000}, {"usd": -50000}))], FETCHED)
    (row,) = out.balances.to_pylist()
    assert row["balance_type"] == "credit"
    assert (row["current_minor"], row["used_minor"], row["available_minor"]) == (-50000, -50000, None)
    assert (row["current"], row["used"], row["available"]) == (Decimal("-500"), Decimal("-500"), None)


def test_zero_and_three_decimal_currencies() -> None:
    out = normalize_balances([account(cash({"jpy": 1234, "kwd": 12345, "bhd": -1}, {"jpy": 1000}))], FETCHED)
    rows = rows_by_currency(out.balances)
    assert rows["jpy"]["current"] == Decimal("1234")
    assert rows["jpy"]["available"] == Decimal("1000")
    assert rows["kwd"]["current"] == Decimal("12.345")
    assert rows["bhd"]["current"] == Decimal("-0.001")


def test_only_current_and_null_sub_hashes() -> None:
    only_current = {"as_of": AS_OF, "type": "cash", "current": {"usd": 10}, "cash": None, "credit": None}
    null_available = cash({"usd": 20}, None)
    null_used = credit({"usd": -30}, None)
    out = normalize_balances(
        [account(only_current, "fca_a"), account(null_available, "fca_b"), account(null_used, "fca_c")], FETCHED
    )
    assert out.rejected.num_rows == 0
    got = {(r["account_id"], r["current_minor"], r["available_minor"], r["used_minor"])
           for r in out.balances.to_pylist()}
    assert got == {("fca_a", 10, None, None), ("fca_b", 20, None, None), ("fca_c", -30, None, None)}


def test_null_balance_gives_no_rows_and_no_rejects() -> None:
    out = normalize_balances([account(None)], FETCHED)
    assert out.balances.num_rows == 0
    assert out.rejected.num_rows == 0
    assert out.balances.schema == FC_BALANCES_SCHEMA
    assert out.rejected.schema == FC_REJECTED_BALANCES_SCHEMA


def test_customer_id_only_for_customer_holders() -> None:
    out = normalize_balances(
        [account(cash({"usd": 1}), "fca_c"),
         account(cash({"usd": 1}), "fca_a", holder={"type": "account", "account": "acct_1", "customer": None})],
        FETCHED,
    )
    assert {r["account_id"]: r["customer_id"] for r in out.balances.to_pylist()} == {
        "fca_c": "cus_A", "fca_a": None}


def test_exact_beyond_two_to_the_53() -> None:
    big = 9007199254740993  # 2**53 + 1: a double cannot hold it
    assert float(big) != big
    out = normalize_balances([account(cash({"usd": big}, {"usd": -big}))], FETCHED)
    (row,) = out.balances.to_pylist()
    assert row["current_minor"] == big
    assert row["current"] == Decimal("90071992547409.93")
    assert row["available"] == Decimal("-90071992547409.93")


def test_int64_limits_are_exact() -> None:
    top, bottom = 2**63 - 1, -(2**63)
    out = normalize_balances([account(cash({"usd": top, "jpy": bottom, "kwd": top}))], FETCHED)
    rows = rows_by_currency(out.balances)
    assert rows["usd"]["current"] == Decimal("92233720368547758.07")
    assert rows["jpy"]["current"] == Decimal("-9223372036854775808")
    assert rows["kwd"]["current"] == Decimal("9223372036854775.807")


def test_minor_to_major_matches_decimal_arithmetic() -> None:
    values = [0, 1, -1, 99, -100, 123456789, 2**53 + 1, 2**63 - 1, -(2**63), None]
    for exponent in (0, 2, 3):
        got = minor_to_major(pa.array(values, pa.int64()), pa.array([exponent] * len(values), pa.int8()))
        assert got.type == pa.decimal128(38, 4)
        want = [None if v is None else Decimal(v).scaleb(-exponent) for v in values]
        assert got.to_pylist() == want


def test_duplicate_keys_keep_the_first() -> None:
    first = account(cash({"usd": 100}), "fca_1")
    second = account(cash({"usd": 999}), "fca_1")
    out = normalize_balances([first, second], FETCHED)
    (row,) = out.balances.to_pylist()
    assert row["current_minor"] == 100


def test_same_account_new_as_of_is_a_new_row() -> None:
    out = normalize_balances([account(cash({"usd": 100})), account(cash({"usd": 150}, as_of=AS_OF + 60))], FETCHED)
    assert sorted(r["current_minor"] for r in out.balances.to_pylist()) == [100, 150]


REJECT_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("unknown_currency", account(cash({"undefined": 1000}, {"undefined": 900})), "fca_1", "undefined"),
    ("upper_case_currency", account(cash({"USD": 1000})), "fca_1", "USD"),
    ("amount_not_integer_float", account(cash({"usd": 10.5})), "fca_1", "usd"),
    ("amount_not_integer_bool", account(cash({"usd": 1}, {"usd": True})), "fca_1", "usd"),
    ("amount_not_integer_string", account(credit({"usd": "-5"})), "fca_1", "usd"),
    ("amount_not_integer_null", account(cash({"usd": None})), "fca_1", "usd"),
    ("amount_out_of_range_high", account(cash({"usd": 2**63})), "fca_1", "usd"),
    ("amount_out_of_range_low", account(credit({"usd": -(2**63) - 1})), "fca_1", "usd"),
    ("invalid_as_of_missing", account({"type": "cash", "current": {"usd": 1}}), "fca_1", None),
    ("invalid_as_of_string", account(cash({"usd": 1}, as_of="1764100000")), "fca_1", None),
    ("invalid_as_of_bool", account(cash({"usd": 1}, as_of=True)), "fca_1", None),
    ("invalid_as_of_float", account(cash({"usd": 1}, as_of=1764100000.5)), "fca_1", None),
    ("unknown_balance_type", account({"as_of": AS_OF, "type": "investment", "current": {"usd": 1}}), "fca_1",
     None),
    ("invalid_amount_map_current", account(cash([["usd", 1]])), "fca_1", None),
    ("invalid_amount_map_available", account(cash({"usd": 1}, "usd:1")), "fca_1", None),
    ("invalid_amount_map_cash_hash", account({"as_of": AS_OF, "type": "cash", "current": {"usd": 1},
                                              "cash": 5, "credit": None}), "fca_1", None),
    ("cash_with_credit_used", account({"as_of": AS_OF, "type": "cash", "current": {"usd": 1},
                                       "cash": {"available": {"usd": 1}}, "credit": {"used": {"usd": 3}}}),
     "fca_1", None),
    ("credit_with_cash_available", account({"as_of": AS_OF, "type": "credit", "current": {"usd": -1},
                                            "cash": {"available": {"usd": 2}}, "credit": {"used": {"usd": -1}}}),
     "fca_1", None),
    ("missing_account_id", account(cash({"usd": 1}), account_id=None), None, None),
    ("missing_account_id_int", account(cash({"usd": 1}), account_id=17), None, None),
    ("balance_not_object", account(["as_of", AS_OF]), "fca_1", None),
]
EXPECTED_REASON = {
    "upper_case_currency": "unknown_currency",
    "amount_not_integer_float": "amount_not_integer",
    "amount_not_integer_bool": "amount_not_integer",
    "amount_not_integer_string": "amount_not_integer",
    "amount_not_integer_null": "amount_not_integer",
    "amount_out_of_range_high": "amount_out_of_range",
    "amount_out_of_range_low": "amount_out_of_range",
    "invalid_as_of_missing": "invalid_as_of",
    "invalid_as_of_string": "invalid_as_of",
    "invalid_as_of_bool": "invalid_as_of",
    "invalid_as_of_float": "invalid_as_of",
    "invalid_amount_map_current": "invalid_amount_map",
    "invalid_amount_map_available": "invalid_amount_map",
    "invalid_amount_map_cash_hash": "invalid_amount_map",
    "missing_account_id_int": "missing_account_id",
}


@pytest.mark.parametrize(("case", "bad", "account_id", "currency"), REJECT_CASES, ids=[c[0] for c in REJECT_CASES])
def test_every_reject_reason(case: str, bad: dict[str, Any], account_id: str | None, currency: str | None) -> None:
    good = account(cash({"usd": 42}), "fca_good")
    out = normalize_balances([good, bad], FETCHED)
    # The good account is unaffected by its bad neighbour.
    assert [(r["account_id"], r["current_minor"]) for r in out.balances.to_pylist()] == [("fca_good", 42)]
    (reject,) = out.rejected.to_pylist()
    reason = EXPECTED_REASON.get(case, case)
    assert reason in REJECT_REASONS
    assert reject["reason"] == reason
    assert reject["account_id"] == account_id
    assert reject["currency"] == currency
    assert reject["payload"] == json.dumps(bad["balance"], sort_keys=True, separators=(",", ":"))
    assert reject["fetched_at"] == FETCHED
    assert out.rejected.schema == FC_REJECTED_BALANCES_SCHEMA


def test_reject_keeps_as_of_when_valid_and_other_currencies_pass() -> None:
    out = normalize_balances([account(cash({"usd": 5, "undefined": 7}, {"usd": 4}))], FETCHED)
    assert [(r["currency"], r["current_minor"], r["available_minor"]) for r in out.balances.to_pylist()] == [
        ("usd", 5, 4)]
    (reject,) = out.rejected.to_pylist()
    assert (reject["currency"], reject["as_of"], reject["reason"]) == ("undefined", AS_OF_DT, "unknown_currency")


def test_payload_is_compact_sorted_json() -> None:
    bad = account({"type": "cash", "current": {"usd": 1, "eur": 2}, "as_of": None})
    (reject,) = normalize_balances([bad], FETCHED).rejected.to_pylist()
    assert reject["payload"] == '{"as_of":null,"current":{"eur":2,"usd":1},"type":"cash"}'


def test_non_mapping_account_and_empty_foreign_map_never_raise() -> None:
    empty_used = {"as_of": AS_OF, "type": "cash", "current": {"usd": 1}, "cash": None, "credit": {"used": {}}}
    out = normalize_balances([None, "fca_x", account(empty_used)], FETCHED)  # type: ignore[list-item]
    assert [r["reason"] for r in out.rejected.to_pylist()] == ["missing_account_id", "missing_account_id"]
    assert out.balances.column("current_minor").to_pylist() == [1]


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_balances([], datetime(2025, 1, 1))


def test_fetched_at_in_another_zone_is_converted_to_utc() -> None:
    plus_two = datetime(2025, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    out = normalize_balances([account(cash({"usd": 1}))], plus_two)
    assert out.balances.column("fetched_at").to_pylist() == [FETCHED]


def test_schemas_registry() -> None:
    assert SCHEMAS == {
        "fc_accounts": FC_ACCOUNTS_SCHEMA,
        "fc_balances": FC_BALANCES_SCHEMA,
        "fc_balance_refreshes": FC_BALANCE_REFRESHES_SCHEMA,
        "fc_rejected_balances": FC_REJECTED_BALANCES_SCHEMA,
    }
    assert FC_BALANCES_SCHEMA.field("current").type == pa.decimal128(38, 4)
    assert FC_BALANCES_SCHEMA.field("as_of").type == pa.timestamp("us", tz="UTC")
    assert FC_ACCOUNTS_SCHEMA.field("permissions").type == pa.list_(pa.string())


# ---------------------------------------------------------------------------------------------- accounts


def test_normalize_accounts_fields() -> None:
    full = account(
        cash({"usd": 1}), "fca_1", institution_name="StripeBank", display_name="Checking", last4="6789",
        category="cash", subcategory="checking", status="active", permissions=["balances", "payment_method"],
        livemode=False, created=1764000000,
        balance_refresh={"status": "succeeded", "last_attempted_at": 1764000100,
                         "next_refresh_available_at": 1764003700},
        status_details={"active": {"action": "relink_required", "cause": "access_expired",
                                   "expected_deactivation_date": 1764086400}},
        account_numbers=[{"identifier_type": "account_number", "status": "expired", "supported_networks": ["ach"]},
                         {"identifier_type": "tokenized_account_number", "status": "pending",
                          "supported_networks": ["ach"]}],
    )
    business = account(None, "fca_2", holder={"type": "account", "account": "acct_9"}, permissions=None,
                       balance_refresh=None, created="yesterday", livemode="no")
    table = normalize_accounts([full, business, account(None, None)], FETCHED)
    assert table.schema == FC_ACCOUNTS_SCHEMA
    first, second = table.to_pylist()
    assert first == {
        "account_id": "fca_1", "customer_id": "cus_A", "account_holder_type": "customer",
        "institution_name": "StripeBank", "display_name": "Checking", "last4": "6789", "category": "cash",
        "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
        "livemode": False, "created_at": datetime(2025, 11, 24, 16, 0, tzinfo=UTC),
        "balance_refresh_status": "succeeded",
        "balance_refresh_last_attempted_at": datetime(2025, 11, 24, 16, 1, 40, tzinfo=UTC),
        "next_refresh_available_at": datetime(2025, 11, 24, 17, 1, 40, tzinfo=UTC),
        "observed_at": FETCHED,
        "access_stopped_at": None,  # active
        "expected_deactivation_at": datetime(2025, 11, 25, 16, 0, tzinfo=UTC),
        "account_numbers_status": "pending",  # the better of expired and pending
    }
    assert second["account_id"] == "fca_2"
    assert second["expected_deactivation_at"] is None  # no status_details: Stripe says nothing
    assert second["account_numbers_status"] is None  # no account numbers
    assert second["customer_id"] is None
    assert second["account_holder_type"] == "account"
    assert second["permissions"] is None
    assert second["created_at"] is None  # not unix seconds: null, not an error
    assert second["livemode"] is None
    assert second["balance_refresh_status"] is None


def test_normalize_accounts_repeated_id_keeps_last_and_empty_input() -> None:
    table = normalize_accounts([account(None, status="active"), account(None, status="inactive")], FETCHED)
    assert table.column("access_stopped_at").to_pylist() == [FETCHED]  # stopped: this observation's time
    assert table.column("status").to_pylist() == ["inactive"]
    empty = normalize_accounts([], FETCHED)
    assert empty.num_rows == 0
    assert empty.schema == FC_ACCOUNTS_SCHEMA


# ---------------------------------------------------------------------------------------------- refreshes


def test_refreshes_table() -> None:
    records = [
        {"run_id": "run_1", "account_id": "fca_1", "outcome": "succeeded", "requested_at": 1764100000,
         "completed_at": 1764100002.5, "status": "succeeded", "next_refresh_available_at": 1764103600,
         "error_code": None},
        {"run_id": "run_1", "account_id": "fca_2", "outcome": "skipped_inactive", "requested_at": None,
         "completed_at": None, "status": None, "next_refresh_available_at": None, "error_code": None},
        {"run_id": "run_1", "account_id": "fca_1", "outcome": "failed", "requested_at": 1764100000,
         "completed_at": 1764100009, "status": "failed", "next_refresh_available_at": None,
         "error_code": "institution_down"},
    ]
    table = refreshes_table(records)
    assert table.schema == FC_BALANCE_REFRESHES_SCHEMA
    rows = {r["account_id"]: r for r in table.to_pylist()}
    assert rows["fca_1"]["outcome"] == "failed"  # the later record of the same (run, account) wins
    assert rows["fca_1"]["completed_at"] == datetime(2025, 11, 25, 19, 46, 49, tzinfo=UTC)
    assert rows["fca_1"]["error_code"] == "institution_down"
    assert rows["fca_2"]["requested_at"] is None
    half = refreshes_table([{**records[0], "account_id": "fca_3"}]).to_pylist()[0]
    assert half["completed_at"] == datetime(2025, 11, 25, 19, 46, 42, 500000, tzinfo=UTC)
    assert refreshes_table([]).schema == FC_BALANCE_REFRESHES_SCHEMA


def test_refreshes_table_refuses_unknown_outcome() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        refreshes_table([{"run_id": "r", "account_id": "a", "outcome": "exploded"}])


@pytest.mark.parametrize(("statuses", "best"), [
    (["deactivated", "transactable", "expired"], "transactable"),
    (["deactivated", "expired"], "expired"),
    (["deactivated"], "deactivated"),
    (["expired", "frozen"], "frozen"),  # a value Stripe added is kept, ranked before the known-unusable ones
    (["pending", "frozen"], "pending"),
    (["zeta_new", "alpha_new"], "alpha_new"),
    ([], None),
])
def test_the_best_account_number_status_is_ranked_and_open(statuses: list[str], best: str | None) -> None:
    numbers = [{"identifier_type": "account_number", "status": s, "supported_networks": ["ach"]} for s in statuses]
    table = normalize_accounts([account(None, account_numbers=numbers)], FETCHED)
    assert table.column("account_numbers_status").to_pylist() == [best]


def test_odd_status_details_and_account_numbers_give_null_not_an_error() -> None:
    odd = [account(None, "fca_a", status_details={"active": {"expected_deactivation_date": "soon"}},
                   account_numbers="none"),
           account(None, "fca_b", status_details={"active": None}, account_numbers=[None, {"status": 7}]),
           account(None, "fca_c", status_details="x", account_numbers=None)]
    table = normalize_accounts(odd, FETCHED)
    assert table.column("expected_deactivation_at").to_pylist() == [None, None, None]
    assert table.column("account_numbers_status").to_pylist() == [None, None, None]
