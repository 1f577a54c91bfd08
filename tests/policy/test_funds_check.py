"""funds-check end to end: the real command in its own process, the sandbox over HTTP, real DuckDB and SQLite."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from assets.events import fc_events
from pipelines.events import EVENT_STORE_RELATIVE, EventStore
from pipelines.funds.check import check_funds
from pipelines.funds.macro import sufficient_funds
from pipelines.resources import WarehouseResource
from tests.policy.helpers import account, cash, fc_balances_cli, seed_warehouse

HOUR = 3600


def refresh_requests(sandbox: Any) -> int:
    return sum(n for endpoint, n in sandbox.stats()["requests"].items() if endpoint.endswith("/refresh"))


def all_requests(sandbox: Any) -> int:
    return sum(sandbox.stats()["requests"].values())


@pytest.fixture
def world(sandbox_factory: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    now = time.time()
    accounts = [
        account("fca_stale", as_of=now - 3 * HOUR, available=1_000),
        account("fca_fresh", as_of=now - 600, available=7_000),
        account("fca_noperm", as_of=None, permissions=["payment_method"]),
        account("fca_inactive", as_of=now - 5 * HOUR, available=8_000, status="inactive"),
        account("fca_webhooked", as_of=now - 4 * HOUR, available=100),
        account("fca_soon", as_of=now - 600, available=7_000,
                status_details={"active": {"expected_deactivation_date": int(now) + 3 * 86_400}}),
    ]
    sandbox = sandbox_factory(refresh_latency=(0.2, 0.2))
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}], "accounts": accounts})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, accounts)
    env = {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url,
           "FC_BALANCES_WAREHOUSE": str(warehouse)}
    return {"sandbox": sandbox, "warehouse": warehouse, "env": env, "now": now}


def run_json(world: dict[str, Any], *args: str, **kwargs: Any) -> dict[str, Any]:
    done = fc_balances_cli(["funds-check", *args, "--json"], world["env"], **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_stale_account_is_refreshed_answered_and_lands_through_fc_events(world: dict[str, Any]) -> None:
    sandbox, warehouse = world["sandbox"], world["warehouse"]
    answer = run_json(world, "fca_stale", "5000", "usd", "--max-age", "1h", check_no_dagster=True)
    assert answer["refreshed"] is True and answer["refresh_outcome"] == "succeeded"
    assert answer["basis"] == "available" and answer["balance_minor"] == 9_000 and answer["sufficient"] is True
    assert answer["staleness_hours"] < 0.1
    assert refresh_requests(sandbox) == 1
    # Nothing written to the warehouse by the check: the old balance is still the newest there.
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        assert sufficient_funds(con, "fca_stale", 5000, "usd").balance_minor == 1_000
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:
        (pending,) = store.pending()
    assert pending.source == "funds_check" and pending.account_id == "fca_stale"
    assert pending.type == "financial_connections.account.refreshed_balance"
    # The events job lands it; the old front door and the macro now see the refreshed balance.
    dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                   instance=dg.DagsterInstance.ephemeral())
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        landed = sufficient_funds(con, "fca_stale", 5000, "usd")
        assert landed.balance_minor == 9_000 and landed.sufficient is True
        macro = con.execute("SELECT sufficient, balance_minor FROM fc_sufficient_funds('fca_stale', 5000, 'usd')")
        assert macro.fetchone() == (True, 9_000)
    # A second check right after is fresh: no new refresh.
    again = run_json(world, "fca_stale", "5000", "usd", "--max-age", "1h")
    assert again["refreshed"] is False and again["refresh_outcome"] == "not_needed"
    assert again["balance_minor"] == 9_000 and refresh_requests(sandbox) == 1


def test_fresh_account_answers_without_calling_stripe(world: dict[str, Any]) -> None:
    before = all_requests(world["sandbox"])
    answer = run_json(world, "fca_fresh", "7001", "usd", "--max-age", "1h", check_no_dagster=True)
    assert answer == {**answer, "sufficient": False, "basis": "available", "balance_minor": 7_000,
                      "refreshed": False, "refresh_outcome": "not_needed"}
    assert abs(answer["staleness_hours"] - 600 / HOUR) < 0.05
    assert all_requests(world["sandbox"]) == before


def test_pending_webhook_balance_counts_as_known(world: dict[str, Any]) -> None:
    """A balance waiting in the event store (webhook, not applied yet) is newer than the warehouse's: no refresh."""
    from tests.events.helpers import account as event_account
    from tests.events.helpers import event

    now = int(time.time())
    obj = event_account("fca_webhooked", balance=cash(4_200, now - 60), refresh_status="succeeded")
    with EventStore(world["warehouse"] / EVENT_STORE_RELATIVE) as store:
        store.add(event("evt_hook1", "refreshed_balance", now - 50, obj), time.time(), "webhook")
    answer = run_json(world, "fca_webhooked", "4000", "usd", "--max-age", "1h")
    assert (answer["sufficient"], answer["balance_minor"], answer["refresh_outcome"]) == (True, 4_200, "not_needed")
    assert refresh_requests(world["sandbox"]) == 0


def test_no_refresh_answers_from_what_is_known(world: dict[str, Any]) -> None:
    before = all_requests(world["sandbox"])
    answer = run_json(world, "fca_stale", "500", "usd", "--max-age", "1h", "--no-refresh")
    assert (answer["sufficient"], answer["balance_minor"], answer["refreshed"]) == (True, 1_000, False)
    assert answer["refresh_outcome"] == "not_requested" and "--no-refresh" in answer["reason"]
    assert all_requests(world["sandbox"]) == before


def test_account_that_cannot_be_refreshed_answers_from_what_it_has(world: dict[str, Any]) -> None:
    answer = run_json(world, "fca_inactive", "5000", "usd", "--max-age", "1h")
    assert (answer["sufficient"], answer["balance_minor"], answer["refreshed"]) == (True, 8_000, False)
    assert answer["refresh_outcome"] == "skipped_inactive" and "not active" in answer["reason"]
    assert refresh_requests(world["sandbox"]) == 0


def test_no_balances_permission_answers_no_balance_with_the_reason(world: dict[str, Any]) -> None:
    answer = run_json(world, "fca_noperm", "1", "usd")
    assert (answer["sufficient"], answer["basis"], answer["balance_minor"]) == (None, "no_balance", None)
    assert answer["refresh_outcome"] == "skipped_no_permission" and "balances permission" in answer["reason"]
    done = fc_balances_cli(["funds-check", "fca_noperm", "1", "usd"], world["env"])
    assert done.returncode == 0 and "no_balance" in done.stdout and len(done.stdout.splitlines()) == 1


@pytest.mark.parametrize(("args", "env_drop", "words"), [
    (["fca_missing", "5000", "usd"], None, "unknown account"),
    (["fca_nowhere", "5000", "usd", "--no-refresh"], None, "unknown account"),
    (["fca_stale", "5000", "usdx"], None, "currency"),
    (["fca_stale", "-5", "usd"], None, "negative"),
    (["fca_stale", "12.5", "usd"], None, "whole number"),
    (["fca_stale", "5000", "usd", "--max-age", "soon"], None, "max age"),
    (["fca_stale", "5000", "usd"], "STRIPE_API_KEY", "STRIPE_API_KEY"),
])
def test_errors_are_one_line_and_exit_1(world: dict[str, Any], args: list[str], env_drop: str | None,
                                        words: str) -> None:
    env = {k: v for k, v in world["env"].items() if k != env_drop}
    done = fc_balances_cli(["funds-check", *args], env)
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert world["env"]["STRIPE_API_KEY"] not in done.stderr


def test_python_api_without_dagster(world: dict[str, Any]) -> None:
    answer = check_funds("fca_fresh", 100, "USD", max_age=3600, env=world["env"])
    assert (answer.sufficient, answer.basis, answer.refreshed) == (True, "available", False)


def test_warnings_carry_the_account_health_without_changing_sufficient(world: dict[str, Any]) -> None:
    soon = run_json(world, "fca_soon", "5000", "usd", "--max-age", "1h")
    assert (soon["sufficient"], soon["balance_minor"], soon["warnings"]) == (True, 7_000, ["deactivating_soon"])
    fresh = run_json(world, "fca_fresh", "7001", "usd", "--max-age", "1h")
    assert (fresh["sufficient"], fresh["warnings"]) == (False, [])  # healthy: no warning
    inactive = run_json(world, "fca_inactive", "5000", "usd", "--max-age", "1h")
    assert (inactive["sufficient"], inactive["warnings"]) == (True, ["inactive"])
    noperm = run_json(world, "fca_noperm", "1", "usd")
    assert (noperm["sufficient"], noperm["warnings"]) == (None, ["no_balance_permission"])
    done = fc_balances_cli(["funds-check", "fca_soon", "5000", "usd"], world["env"])
    assert done.returncode == 0 and done.stdout.rstrip().endswith("; warnings: deactivating_soon")


def test_a_health_event_not_landed_yet_is_warned_about(world: dict[str, Any]) -> None:
    """Stripe's upcoming_deactivation waits in the event store: the newest state counts, before any drain."""
    from tests.events.helpers import account as event_account
    from tests.events.helpers import event

    now = int(time.time())
    obj = event_account("fca_fresh", balance=cash(7_000, now - 600), refresh_status="succeeded")
    obj["status_details"] = {"active": {"action": "relink_required", "cause": "access_expired",
                                        "expected_deactivation_date": now + 86_400}}
    obj["account_numbers"] = [{"expected_expiry_date": None, "identifier_type": "account_number",
                               "status": "transactable", "supported_networks": ["ach"]}]
    assert run_json(world, "fca_fresh", "100", "usd")["warnings"] == []
    with EventStore(world["warehouse"] / EVENT_STORE_RELATIVE) as store:
        store.add(event("evt_upcoming1", "upcoming_deactivation", now - 10, obj), time.time(), "webhook")
    answer = run_json(world, "fca_fresh", "100", "usd", "--max-age", "1h")
    assert (answer["sufficient"], answer["warnings"]) == (True, ["deactivating_soon"])
    env = {**world["env"], "FC_BALANCES_DEACTIVATION_WARNING_DAYS": "0"}
    assert check_funds("fca_fresh", 100, "usd", env=env).warnings == ()  # a day away is not within 0 days
    bad = fc_balances_cli(["funds-check", "fca_fresh", "100", "usd"],
                          {**world["env"], "FC_BALANCES_REFRESH_FAILURES": "many"})
    assert bad.returncode == 1 and "FC_BALANCES_REFRESH_FAILURES must be a whole number" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
