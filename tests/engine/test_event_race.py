"""A completion event read before its refresh call returns is still matched (a race the sandbox can't force)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pipelines.stripe_fc.engine import EngineSettings, RefreshEngine, RefreshRecord

ACCOUNT = {"id": "fca_race", "status": "active", "permissions": ["balances"], "balance_refresh": None}


class RacingClient:
    """A stand-in for StripeFCClient whose refresh call returns only after the events poll has seen the completion.

    Only this ordering is scripted; it is the one a real server produces when a refresh completes within the time
    the refresh response spends in flight.
    """

    def __init__(self) -> None:
        self.event_served = asyncio.Event()
        self.retrieves = 0
        done = {"status": "succeeded", "last_attempted_at": 100, "next_refresh_available_at": 3700}
        self.completed = {**ACCOUNT, "balance_refresh": done,
                          "balance": {"as_of": 100, "type": "cash", "current": {"usd": 1}, "cash": None}}

    def server_now(self) -> float:
        return 50.0

    async def newest_event_id(self, event_type: str) -> str | None:
        return None

    async def list_customers(self) -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"id": "cus_race"}]

    async def list_accounts(self, customer: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        yield [dict(ACCOUNT)]

    async def refresh_account(self, account_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        await self.event_served.wait()
        return {**ACCOUNT, "balance_refresh": {"status": "pending", "last_attempted_at": 100,
                                               "next_refresh_available_at": None}}

    async def events_after(self, event_type: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        if cursor is None:
            self.event_served.set()
            return [{"id": "evt_1", "created": 101, "data": {"object": self.completed}}], "evt_1"
        return [], cursor

    async def retrieve_account(self, account_id: str) -> dict[str, Any]:
        self.retrieves += 1
        return self.completed


class Records:
    def __init__(self) -> None:
        self.records: list[RefreshRecord] = []

    async def account_observed(self, account: Mapping[str, Any], final: bool) -> None:
        return None

    async def refresh_recorded(self, record: RefreshRecord) -> None:
        self.records.append(record)


def test_early_completion_event_is_matched_without_retrieving() -> None:
    client = RacingClient()
    sink = Records()
    settings = EngineSettings(poll_interval=0.01, event_grace=60.0, refresh_timeout=120.0)

    async def main() -> None:
        await asyncio.wait_for(RefreshEngine(client, sink, "run", settings).run(), timeout=10)  # type: ignore[arg-type]

    asyncio.run(main())
    assert client.retrieves == 0
    assert [(r.account_id, r.outcome, r.completed_at) for r in sink.records] == [("fca_race", "succeeded", 101)]
