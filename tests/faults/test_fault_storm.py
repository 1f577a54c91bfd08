"""A storm of 5xx, 429 lock timeouts, dropped connections and slow answers changes nothing in what lands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.faults.harness import (
    integrity_problems,
    query,
    refreshable_account_ids,
    snapshot,
    snapshot_differences,
    storm_fixtures,
)
from tests.integration.helpers import run_ingest

ISO_CODES_IN_FIXTURES = frozenset({"usd", "eur", "jpy", "kwd", "gbp", "chf"})
OUTCOME_BY_PREFIX = {
    "fca_fail": "failed", "fca_inactive": "skipped_inactive", "fca_disc": "skipped_inactive",
    "fca_noperm": "skipped_no_permission", "fca_cool": "skipped_cooldown",
}


def expected_outcome(account_id: str) -> str:
    for prefix, outcome in OUTCOME_BY_PREFIX.items():
        if account_id.startswith(prefix):
            return outcome
    return "succeeded"


def expected_balance_keys(fixtures: dict[str, Any], refreshed: set[str]) -> set[tuple[str, str, int]]:
    """(account_id, currency, as_of) the fixtures must put in fc_balances: from first outcomes and listed balances."""
    keys = set()
    for doc in fixtures["accounts"]:
        balances = [doc.get("balance")]
        first = (doc.get("refresh_outcomes") or [{}])[0]
        if doc["id"] in refreshed and first.get("status") == "succeeded":
            balances.append(first["balance"])
        for balance in balances:
            if not balance:
                continue
            side = (balance.get("cash") or {}).get("available") or (balance.get("credit") or {}).get("used") or {}
            for currency in {*(balance.get("current") or {}), *side}:
                if currency in ISO_CODES_IN_FIXTURES:
                    keys.add((doc["id"], currency, balance["as_of"]))
    return keys


def test_fault_storm_lands_exactly_what_a_fault_free_run_lands(sandbox_factory, tmp_path: Path) -> None:
    fixtures = storm_fixtures(int(time.time()) - 7_200)
    refreshable = refreshable_account_ids(fixtures, time.time())
    # Refreshes that take a while keep the awaiting stage polling, so faults also hit the events reads.
    sandbox_settings = {"fixtures": fixtures, "refresh_latency": (0.5, 2.0), "refresh_cooldown": 3_600.0}

    calm = sandbox_factory(**sandbox_settings)
    calm_warehouse = tmp_path / "calm"
    assert run_ingest(calm, calm_warehouse).success
    stormy = sandbox_factory(**sandbox_settings, fault_rate=0.15)
    stormy_warehouse = tmp_path / "stormy"
    assert run_ingest(stormy, stormy_warehouse).success

    # The faulty run really met faults, of several kinds. (The sandbox draws faults from a seeded sequence, one
    # draw per request: the first 58 requests of seed 42 meet 6 faults of 4 kinds, and a run makes more.)
    storm_stats = stormy.stats()
    assert sum(storm_stats["requests"].values()) >= 58
    assert sum(storm_stats["faults"].values()) >= 5, storm_stats["faults"]
    assert len(storm_stats["faults"]) >= 3, storm_stats["faults"]
    assert calm.stats()["faults"] == {}

    # Same rows, all columns but the run-specific ones (see harness.RUN_SPECIFIC_COLUMNS).
    assert snapshot_differences(snapshot(stormy_warehouse), snapshot(calm_warehouse)) == []

    # ...and the fault-free run is itself right, judged from the fixtures (not from its own output).
    outcomes = dict(query(calm_warehouse, "select account_id, outcome from fc_balance_refreshes"))
    assert outcomes == {doc["id"]: expected_outcome(doc["id"]) for doc in fixtures["accounts"]}
    landed = {(a, c, int(t)) for a, c, t in query(calm_warehouse, "select account_id, currency, epoch(as_of) "
                                                                  "from fc_balances")}
    assert landed == expected_balance_keys(fixtures, refreshable)
    assert query(calm_warehouse, "select account_id, currency, reason from fc_rejected_balances") == [
        ("fca_undefined", "undefined", "unknown_currency")]

    # One refresh started per refreshable account, in both sandboxes: retried POSTs reused their idempotency key.
    assert calm.stats()["refreshes_started"] == len(refreshable)
    assert storm_stats["refreshes_started"] == len(refreshable)
    requested = {row[0] for row in query(stormy_warehouse, "select account_id from fc_balance_refreshes "
                                                           "where requested_at is not null")}
    assert requested == refreshable

    # Parquet holds exactly the DuckDB rows, keys are unique, the shared checker passes: after both runs.
    assert integrity_problems(calm_warehouse) == []
    assert integrity_problems(stormy_warehouse) == []
