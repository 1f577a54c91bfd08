"""Streaming: refreshes start before listing ends, rows land in several batches, discovery modes agree."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from assets.balances import stripe_fc_ingest
from pipelines.resources import WarehouseResource
from pipelines.stripe_fc.client import ClientSettings, StripeFCClient
from pipelines.stripe_fc.engine import EngineSettings, RefreshEngine, RefreshRecord
from tests.integration.helpers import metadata, query, run_ingest, stripe_resource

T0 = 1_764_000_000


def fixtures(customers: int) -> dict:
    custs = [{"id": f"cus_s{i:04d}", "created": T0 + i} for i in range(customers)]
    accounts = [{"id": f"fca_s{i:04d}", "customer": c["id"], "category": "cash", "subcategory": "checking",
                 "status": "active", "permissions": ["balances"], "created": T0 + i,
                 "refresh_outcomes": [{"status": "succeeded", "balance": {
                     "as_of": T0 + 100, "type": "cash", "current": {"usd": i}, "cash": {"available": {"usd": i}}}}]}
                for i, c in enumerate(custs)]
    return {"customers": custs, "accounts": accounts}


class TimelineSink:
    """Notes, for every refresh outcome, whether listing was still going on when it arrived."""

    def __init__(self) -> None:
        self.engine: RefreshEngine | None = None
        self.outcomes_during_listing = 0
        self.records: list[RefreshRecord] = []

    async def account_observed(self, account: Mapping[str, Any], final: bool) -> None:
        return None

    async def refresh_recorded(self, record: RefreshRecord) -> None:
        assert self.engine is not None
        self.records.append(record)
        if record.outcome == "succeeded" and not self.engine.progress.listing_done:
            self.outcomes_during_listing += 1


def test_refreshes_complete_while_listing_goes_on(sandbox_factory) -> None:
    # 60 customers listed one call each at 25/s take over two seconds; refreshes must not wait for the end.
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05), rate_limit_global=100.0)
    sandbox.load_fixtures(fixtures(60))
    sink = TimelineSink()

    async def main() -> None:
        client = StripeFCClient(ClientSettings(api_key=sandbox.api_key, api_base=sandbox.base_url,
                                               max_rps=100.0, max_rps_per_endpoint=25.0))
        engine = RefreshEngine(client, sink, "run-overlap", EngineSettings(poll_interval=0.05))
        sink.engine = engine
        try:
            await engine.run()
        finally:
            await client.aclose()

    asyncio.run(main())
    assert len(sink.records) == 60
    assert all(record.outcome == "succeeded" for record in sink.records)
    assert sink.outcomes_during_listing > 0
    assert sandbox.stats()["rate_limited"] == 0


def test_rows_land_in_several_batches(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(30))
    warehouse = tmp_path / "wh"
    result = dg.materialize(
        [stripe_fc_ingest],
        resources={"stripe": stripe_resource(sandbox),
                   "warehouse": WarehouseResource(directory=str(warehouse), batch_size=10, flush_seconds=60)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert metadata(result, "fc_balances")["write_batches"] >= 3
    # Each batch stamps its own fetched_at, so several batches leave several distinct values.
    assert query(warehouse, "select count(distinct fetched_at) from fc_balances")[0][0] >= 2
    assert query(warehouse, "select count(*) from fc_balances")[0][0] == 30


def test_discovery_all_finds_the_same_accounts(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(12))
    per_customer, everything = tmp_path / "a", tmp_path / "b"
    assert run_ingest(sandbox, per_customer, discovery="per_customer").success
    sandbox.advance_clock(3601)
    assert run_ingest(sandbox, everything, discovery="all").success
    accounts = "select account_id, customer_id from fc_accounts order by 1"
    assert query(per_customer, accounts) == query(everything, accounts)
    assert len(query(everything, accounts)) == 12

