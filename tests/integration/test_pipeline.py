"""The whole ingest against the sandbox: what lands in fc_balances equals what the sandbox served, case by case."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.helpers import metadata, published_rows, query, run_ingest
from tests.warehouse_contract import warehouse_problems

T0 = 1_764_000_000  # fixture creation times; scripted as_of values are after it and in the past
AS_OF_1 = 1_764_100_000
AS_OF_2 = 1_764_200_000


def cash(current: dict[str, int], available: dict[str, int] | None, as_of: int | None = AS_OF_1) -> dict:
    sub_hash = None if available is None else {"available": available}
    balance: dict = {"type": "cash", "current": current, "cash": sub_hash}
    if as_of is not None:
        balance["as_of"] = as_of
    return balance


def account(account_id: str, customer: str, outcomes: list[dict] | None = None, **fields: object) -> dict:
    base: dict = {"id": account_id, "customer": customer, "institution_name": "StripeBank", "category": "cash",
                  "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
                  "created": T0, "balance": None, "balance_refresh": None}
    if outcomes is not None:
        base["refresh_outcomes"] = outcomes
    base.update(fields)
    return base


def ok(balance: dict) -> dict:
    return {"status": "succeeded", "balance": balance}


def build_fixtures() -> dict:
    now = int(time.time())
    accounts = [
        account("fca_cash", "cus_B", [ok(cash({"usd": 6000}, {"usd": 5000})),
                                      ok(cash({"usd": 6100}, {"usd": 5100}, as_of=AS_OF_2))]),
        account("fca_card", "cus_B", [ok({"as_of": AS_OF_1, "type": "credit", "current": {"usd": -50000},
                                          "credit": {"used": {"usd": 50000}}})],
                category="credit", subcategory="credit_card"),
        account("fca_multi", "cus_B", [ok(cash({"usd": 100, "eur": -250}, {"usd": 90}))]),
        account("fca_jpy", "cus_B", [ok(cash({"jpy": 12345}, {"jpy": 12000}))]),
        account("fca_kwd", "cus_B", [ok(cash({"kwd": 1234567}, {"kwd": 1}))]),
        account("fca_only_current", "cus_B", [ok(cash({"usd": 777}, None))]),
        account("fca_null_sub", "cus_B", [ok({"as_of": AS_OF_1, "type": "cash", "current": {"usd": 5},
                                              "cash": {"available": None}})]),
        account("fca_fail", "cus_B", [{"status": "failed"}]),
        account("fca_disc", "cus_B", [ok(cash({"usd": 1}, {"usd": 1}))], status="disconnected"),
        account("fca_inactive", "cus_B", status="inactive",
                balance=cash({"usd": 4242}, {"usd": 4000}, as_of=AS_OF_1 - 86_400)),
        account("fca_noperm", "cus_B", [ok(cash({"usd": 1}, {"usd": 1}))], permissions=["payment_method"]),
        account("fca_cool", "cus_B", [ok(cash({"usd": 1}, {"usd": 1}))],
                balance=cash({"usd": 900}, {"usd": 800}, as_of=AS_OF_1 - 3600),
                balance_refresh={"status": "succeeded", "last_attempted_at": now - 60,
                                 "next_refresh_available_at": now + 86_400}),
        account("fca_bad", "cus_B", [ok(cash({"undefined": 10, "usd": 20}, {"usd": 20}))]),
        account("fca_pending", "cus_B", [ok(cash({"gbp": 333}, {"gbp": 300}))],
                balance_refresh={"status": "pending", "last_attempted_at": now - 1, "next_refresh_available_at": None}),
        # More than 100 accounts for one customer: listing must follow pages. Inactive, so no refreshes needed.
        *[account(f"fca_many{i:03d}", "cus_A", status="inactive") for i in range(105)],
    ]
    customers = [{"id": c, "email": f"{c}@example.com", "created": T0 + i}
                 for i, c in enumerate(["cus_A", "cus_B", "cus_C"])]
    return {"customers": customers, "accounts": accounts}


@pytest.fixture()
def loaded_sandbox(sandbox_factory):
    sandbox = sandbox_factory(refresh_latency=(0.2, 0.2), refresh_cooldown=3600.0)
    sandbox.load_fixtures(build_fixtures())
    return sandbox


def balances(warehouse: Path) -> dict[tuple[str, str], tuple]:
    rows = query(warehouse, "select account_id, currency, balance_type, current_minor, available_minor, used_minor, "
                            "current, available, used, epoch(as_of)::bigint, customer_id from fc_balances")
    return {(r[0], r[1]): r[2:] for r in rows}


def test_balances_equal_what_the_sandbox_served(sandbox_factory, tmp_path: Path) -> None:
    # A latency long enough that fca_pending, loaded pending, is still pending when the run lists it.
    sandbox = sandbox_factory(refresh_latency=(3.0, 3.0), refresh_cooldown=3600.0)
    sandbox.load_fixtures(build_fixtures())
    warehouse = tmp_path / "wh"
    result = run_ingest(sandbox, warehouse)
    assert result.success
    got = balances(warehouse)
    d = Decimal
    # Cash, positive, with available; Stripe's sign kept; exact major units.
    assert got[("fca_cash", "usd")] == ("cash", 6000, 5000, None, d("60.0000"), d("50.0000"), None, AS_OF_1, "cus_B")
    # Credit: negative current, used as Stripe sends it, no available.
    assert got[("fca_card", "usd")] == ("credit", -50000, None, 50000, d("-500.0000"), None, d("500.0000"),
                                        AS_OF_1, "cus_B")
    # Two currencies in one map: one row each; eur has no available.
    assert got[("fca_multi", "usd")][:5] == ("cash", 100, 90, None, d("1.0000"))
    assert got[("fca_multi", "eur")][:7] == ("cash", -250, None, None, d("-2.5000"), None, None)
    # Zero-decimal and three-decimal currencies.
    assert got[("fca_jpy", "jpy")][1:7] == (12345, 12000, None, d("12345.0000"), d("12000.0000"), None)
    assert got[("fca_kwd", "kwd")][1:7] == (1234567, 1, None, d("1234.5670"), d("0.0010"), None)
    # Only current: the cash sub-hash is null; a null available inside it is the same.
    assert got[("fca_only_current", "usd")][1:3] == (777, None)
    assert got[("fca_null_sub", "usd")][1:3] == (5, None)
    # A balance seen on a skipped account is still recorded (inactive, cooldown).
    assert got[("fca_inactive", "usd")][1:3] == (4242, 4000)
    assert got[("fca_cool", "usd")][1:3] == (900, 800)
    # The refresh that was pending when listed was awaited and its balance landed.
    assert got[("fca_pending", "gbp")][1:3] == (333, 300)
    # No balance for a failed first refresh, a disconnected account, or one without the permission.
    for absent in ("fca_fail", "fca_disc", "fca_noperm"):
        assert not [key for key in got if key[0] == absent], absent
    # The bogus currency went to fc_rejected_balances; the valid currency of the same map landed.
    assert got[("fca_bad", "usd")][1] == 20
    assert ("fca_bad", "undefined") not in got
    rejected = query(warehouse, "select account_id, currency, reason from fc_rejected_balances")
    assert [(r[0], r[1]) for r in rejected] == [("fca_bad", "undefined")]

    outcomes = dict(query(warehouse, "select account_id, outcome from fc_balance_refreshes"))
    assert outcomes["fca_cash"] == "succeeded"
    assert outcomes["fca_fail"] == "failed"
    assert outcomes["fca_disc"] == "skipped_inactive"
    assert outcomes["fca_inactive"] == "skipped_inactive"
    assert outcomes["fca_noperm"] == "skipped_no_permission"
    assert outcomes["fca_cool"] == "skipped_cooldown"
    assert outcomes["fca_pending"] == "succeeded"
    assert query(warehouse, "select requested_at from fc_balance_refreshes where account_id = 'fca_pending'") == [
        (None,)
    ]
    assert len(outcomes) == 14 + 105  # every account listed, one row per account per run
    # Every account of the customer with more than 100 accounts was listed; the customer with none adds nothing.
    assert query(warehouse, "select count(*) from fc_accounts where customer_id = 'cus_A'") == [(105,)]
    assert query(warehouse, "select count(*) from fc_accounts where customer_id = 'cus_C'") == [(0,)]
    assert query(warehouse, "select status from fc_accounts where account_id = 'fca_disc'") == [("disconnected",)]

    meta = metadata(result, "fc_balances")
    assert meta["accounts_seen"] == 119
    # cash, card, multi, jpy, kwd, only_current, null_sub and bad were refreshed; pending was awaited.
    assert meta["outcome_succeeded"] == 9
    assert meta["outcome_failed"] == 1
    assert meta["dagster/row_count"] == len(got)


def test_second_run_adds_only_new_as_of_rows(loaded_sandbox, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert run_ingest(loaded_sandbox, warehouse).success
    first = balances(warehouse)
    # Straight away, everything refreshed is in cooldown: nothing new.
    assert run_ingest(loaded_sandbox, warehouse).success
    assert balances(warehouse) == first
    # After the cooldown, fca_cash's second scripted outcome has a new as_of; the others repeat their last outcome
    # with the same as_of, which must not duplicate.
    loaded_sandbox.advance_clock(3601)
    assert run_ingest(loaded_sandbox, warehouse).success
    rows = query(warehouse, "select account_id, currency, epoch(as_of)::bigint, current_minor from fc_balances "
                            "where account_id = 'fca_cash' order by as_of")
    assert rows == [("fca_cash", "usd", AS_OF_1, 6000), ("fca_cash", "usd", AS_OF_2, 6100)]
    total = query(warehouse, "select count(*) from fc_balances")[0][0]
    assert total == len(first) + 1
    assert query(warehouse, "select count(distinct run_id) from fc_balance_refreshes") == [(3,)]


def test_duckdb_and_iceberg_hold_the_same_rows(loaded_sandbox, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert run_ingest(loaded_sandbox, warehouse).success
    for table, order in [("fc_balances", "account_id, as_of, currency"), ("fc_accounts", "account_id"),
                         ("fc_balance_refreshes", "run_id, account_id"),
                         ("fc_rejected_balances", "account_id, currency")]:
        columns = [r[0] for r in query(warehouse, "select column_name from information_schema.columns "
                                                  "where table_name = ? order by ordinal_position", [table])]
        in_duckdb = query(warehouse, f"select {', '.join(columns)} from {table} order by {order}")
        assert published_rows(warehouse, table, order) == in_duckdb, table
        assert in_duckdb, table
    assert warehouse_problems(warehouse) == []


def test_refreshes_still_pending_at_the_deadline_time_out(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(60.0, 60.0))
    sandbox.load_fixtures({"customers": [{"id": "cus_T", "created": T0}],
                           "accounts": [account("fca_slow", "cus_T", [ok(cash({"usd": 1}, {"usd": 1}))])]})
    warehouse = tmp_path / "wh"
    result = run_ingest(sandbox, warehouse, refresh_timeout_seconds=0.5, event_grace_seconds=0.2)
    assert result.success
    rows = query(warehouse, "select outcome, status, requested_at is not null, completed_at from fc_balance_refreshes")
    assert rows == [("timed_out", "pending", True, None)]
    assert query(warehouse, "select count(*) from fc_balances") == [(0,)]
