"""The refresh policy in real runs: Dagster materializes the ingest against the sandbox into DuckDB and Parquet."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.events import EVENT_STORE_RELATIVE, EventStore
from tests.events.helpers import account as event_account
from tests.events.helpers import event
from tests.integration.helpers import metadata, query, run_ingest
from tests.policy.helpers import account, cash, seed_warehouse

HOUR = 3600


def refresh_requests(sandbox: Any) -> int:
    return sum(n for endpoint, n in sandbox.stats()["requests"].items() if endpoint.endswith("/refresh"))


def outcomes(warehouse: Path) -> dict[str, str]:
    return dict(query(warehouse, "SELECT account_id, outcome FROM fc_balance_refreshes"))


def test_skipped_fresh_from_every_source(sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    now = time.time()
    warehouse = tmp_path / "warehouse"
    listed = [
        account("fca_warehousefresh"),  # Stripe lists no balance; the warehouse has a fresh one
        account("fca_eventfresh"),  # a webhook balance waits in the event store, not applied yet
        account("fca_listedfresh", as_of=now - 600),  # only the listing shows a fresh balance
        account("fca_stale", as_of=now - 5 * HOUR),
        account("fca_neverseen"),
    ]
    sandbox = sandbox_factory()
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}], "accounts": listed})
    seed_warehouse(warehouse, [account("fca_warehousefresh", as_of=now - 900),
                               account("fca_stale", as_of=now - 5 * HOUR)])
    obj = event_account("fca_eventfresh", balance=cash(500, int(now) - 300), refresh_status="succeeded")
    with EventStore(warehouse / EVENT_STORE_RELATIVE) as store:
        store.add(event("evt_fresh1", "refreshed_balance", int(now) - 290, obj), now, "webhook")

    result = run_ingest(sandbox, warehouse, max_age_hours=1.0, refresh_price="0.05")
    assert result.success
    assert outcomes(warehouse) == {
        "fca_warehousefresh": "skipped_fresh", "fca_eventfresh": "skipped_fresh", "fca_listedfresh": "skipped_fresh",
        "fca_stale": "succeeded", "fca_neverseen": "succeeded",
    }
    assert refresh_requests(sandbox) == 2
    meta = metadata(result, "fc_balances")
    assert (meta["outcome_skipped_fresh"], meta["refreshes_saved_by_policy"], meta["refresh_requested"]) == (3, 3, 2)
    assert Decimal(meta["estimated_refresh_cost"]) == Decimal("0.10")
    assert Decimal(meta["estimated_cost_saved"]) == Decimal("0.15")


def _budget_world(now: float) -> tuple[list[dict[str, Any]], dict[str, float], list[tuple[str, int, datetime | None]]]:
    """Sandbox accounts over two customers, what the warehouse knew of them, and the priority rows."""
    listed: list[dict[str, Any]] = []
    known: dict[str, float] = {}
    for i in range(16):  # known, distinct staleness: fca_k00 stalest
        account_id = f"fca_k{i:02d}"
        known[account_id] = now - (100 - i) * HOUR
        listed.append(account(account_id, customer="cus_A" if i % 2 else "cus_B"))
    for i in range(4):  # never seen anywhere: first among accounts without a priority
        listed.append(account(f"fca_n{i}", customer="cus_A"))
    for i in range(3):  # listed with a balance the warehouse lacks: ranked by that as_of
        listed.append(account(f"fca_l{i}", customer="cus_B", as_of=now - (99.5 - i) * HOUR))
    listed += [
        account("fca_inactive", status="inactive"),
        account("fca_noperm", permissions=["payment_method"]),
        account("fca_cooldown", balance_refresh={"status": "succeeded", "last_attempted_at": int(now) - 60,
                                                  "next_refresh_available_at": int(now) + HOUR}),
        account("fca_pinactive", status="inactive"),
    ]
    # The freshest known accounts get priorities; two of them only expired ones, which must not count.
    later, earlier = datetime.now(UTC) + timedelta(days=1), datetime.now(UTC) - timedelta(minutes=1)
    priorities = [("fca_k15", 5, None), ("fca_k14", 2, later), ("fca_pinactive", 9, None),
                  ("fca_k13", 7, earlier), ("fca_k12", 1, earlier), ("fca_notlisted", 3, None)]
    return listed, known, priorities


def _expected(listed: list[dict[str, Any]], known: dict[str, float], priorities: list[tuple[str, int, Any]],
              budget: int, now: float) -> tuple[set[str], set[str]]:
    """(chosen, eligible) computed from the data alone: eligible accounts, then priority, staleness, id."""
    live = {a: p for a, p, expires in priorities if expires is None or expires > datetime.now(UTC)}
    eligible = {}
    for doc in listed:
        refresh = doc.get("balance_refresh") or {}
        if doc["status"] != "active" or "balances" not in doc["permissions"]:
            continue
        if (refresh.get("next_refresh_available_at") or 0) > now:
            continue
        listed_as_of = (doc.get("balance") or {}).get("as_of")
        candidates = [v for v in (known.get(doc["id"]), listed_as_of) if v is not None]
        eligible[doc["id"]] = max(candidates) if candidates else None
    ordered = sorted(eligible, key=lambda a: (a not in live, -live.get(a, 0), eligible[a] is not None,
                                              eligible[a] or 0.0, a))
    return set(ordered[:budget]), set(eligible)


@pytest.mark.parametrize("discovery", ["per_customer", "all"])
def test_budget_refreshes_exactly_the_priority_then_stalest_set(sandbox_factory: Callable[..., Any], tmp_path: Path,
                                                                discovery: str) -> None:
    now = time.time()
    listed, known, priorities = _budget_world(now)
    sandbox = sandbox_factory()
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000},
                                         {"id": "cus_B", "created": 1_764_000_001}], "accounts": listed})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, [account(a, as_of=t) for a, t in known.items()])
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        con.executemany("INSERT INTO fc_refresh_priority VALUES (?, ?, 'test', ?)", priorities)

    budget = 10
    result = run_ingest(sandbox, warehouse, max_refreshes=budget, refresh_price="0.25", discovery=discovery)
    assert result.success
    chosen, eligible = _expected(listed, known, priorities, budget, now)
    assert {"fca_k15", "fca_k14", "fca_n0", "fca_k00"} <= chosen and not {"fca_k13", "fca_k12"} & chosen
    got = outcomes(warehouse)
    assert {a for a, o in got.items() if o == "succeeded"} == chosen
    assert {a for a, o in got.items() if o == "skipped_budget"} == eligible - chosen
    assert refresh_requests(sandbox) == budget
    meta = metadata(result, "fc_balances")
    assert meta["refresh_requested"] == budget and meta["refreshes_saved_by_policy"] == len(eligible) - budget
    assert Decimal(meta["estimated_refresh_cost"]) == Decimal("2.50")
    assert Decimal(meta["estimated_cost_saved"]) == Decimal("0.25") * (len(eligible) - budget)


def test_unset_policy_keeps_todays_behaviour(sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    now = time.time()
    sandbox = sandbox_factory()
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}],
                           "accounts": [account("fca_a", as_of=now - 60), account("fca_b")]})
    result = run_ingest(sandbox, tmp_path / "warehouse")
    assert result.success and outcomes(tmp_path / "warehouse") == {"fca_a": "succeeded", "fca_b": "succeeded"}
    meta = metadata(result, "fc_balances")
    assert meta["refreshes_saved_by_policy"] == 0 and "estimated_refresh_cost" not in meta
