"""The refresh-and-await engine: discover accounts, refresh eligible ones, await outcomes, in overlapped stages.

The stages live in `listing`, `refreshing` and `awaiting`; this module joins them into one run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipelines.contract.values import RefreshOutcome
from pipelines.stripe_fc.awaiting import AwaitingStage
from pipelines.stripe_fc.client import REFRESHED_BALANCE_EVENT, StripeFCClient
from pipelines.stripe_fc.listing import ListingStage
from pipelines.stripe_fc.policy import BudgetPlanner, KnownState, PolicySettings
from pipelines.stripe_fc.progress import eta_seconds, format_progress
from pipelines.stripe_fc.records import (
    INACTIVE_CODE,
    OUTCOMES,
    DiscoveryMode,
    EngineSettings,
    Progress,
    RefreshRecord,
    RunSink,
    classify,
)
from pipelines.stripe_fc.refreshing import RefreshingStage
from pipelines.stripe_fc.state import Pending

__all__ = [
    "INACTIVE_CODE", "OUTCOMES", "DiscoveryMode", "EngineSettings", "Progress", "RefreshEngine", "RefreshRecord",
    "RunSink", "classify", "eta_seconds", "format_progress",
]


class RefreshEngine(ListingStage, RefreshingStage, AwaitingStage):
    """Drives one run. Stages joined by a bounded queue so listing, refreshing and awaiting overlap."""

    def __init__(
        self,
        client: StripeFCClient,
        sink: RunSink | None,
        run_id: str,
        settings: EngineSettings | None = None,
        on_progress: Callable[[Progress, StripeFCClient], Awaitable[None] | None] | None = None,
        policy: PolicySettings | None = None,
        known: KnownState | None = None,
    ) -> None:
        self.client = client
        self.sink = sink
        self.run_id = run_id
        self.settings = settings or EngineSettings()
        self.progress = Progress()
        self._on_progress = on_progress
        self._queue: asyncio.Queue[str] = asyncio.Queue(self.settings.queue_size)
        self._pending: dict[str, Pending] = {}
        self._refreshing = 0  # refresh requests in flight
        # A completion event can be read before the refresh call that caused it has returned (short latencies):
        # such events are kept here, for accounts whose refresh call is in flight, until the call returns.
        self._requesting: set[str] = set()
        self._early: dict[str, tuple[dict[str, Any], Any]] = {}
        self._cursor: str | None = None
        self._prepared = False
        # Set by the caller: True for a customer or account id that was forgotten (fc-balances forget).
        self.is_forgotten: Callable[[Any], bool] = lambda _id: False
        self.policy = policy or PolicySettings()
        self.known = known or KnownState()
        self.planner: BudgetPlanner | None = None  # made when the run starts, from `known` as set by then
        # Eligible accounts waiting for the budget's choice: only what their skipped_budget row needs, not the account.
        self._held: dict[str, tuple[Any, Any]] = {}

    async def prepare(self) -> None:
        """The run's first call: reads the events cursor, and so proves the key and the address work.

        The cursor is read before the first refresh, so no completion event of ours can be older than it.
        """
        self._cursor = await self.client.newest_event_id(REFRESHED_BALANCE_EVENT)
        self._prepared = True

    async def run(self) -> Progress:
        if self.sink is None:
            raise RuntimeError("RefreshEngine.run needs a sink")
        if not self._prepared:
            await self.prepare()
        if self.policy.max_refreshes is not None:
            self.planner = BudgetPlanner(self.policy.max_refreshes, self.known)
        refreshers = [asyncio.create_task(self._refresh_worker()) for _ in range(self.settings.refresh_concurrency)]
        awaiter = asyncio.create_task(self._await_loop())
        reporter = asyncio.create_task(self._report_loop())
        flow = asyncio.create_task(self._flow(refreshers, awaiter))
        helpers = [*refreshers, awaiter, reporter]
        try:
            # A stage that dies (a revoked key, an unreachable API) ends the run at once instead of leaving the
            # others waiting on a queue nobody drains.
            watching: set[asyncio.Task[None]] = {flow, *helpers}
            while not flow.done():
                done, watching = await asyncio.wait(watching, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            await flow
        finally:
            for task in [flow, *helpers]:
                task.cancel()
            await asyncio.gather(flow, *helpers, return_exceptions=True)
        await self._report()
        return self.progress

    async def _flow(self, refreshers: list[asyncio.Task[None]], awaiter: asyncio.Task[None]) -> None:
        await self._discover()
        if self.planner is not None:
            self.progress.budget_started_early = self.planner.started_early
            chosen, over = self.planner.finish()
            for account_id in over:
                status, next_at = self._held.pop(account_id)
                await self._record(RefreshRecord(self.run_id, account_id, RefreshOutcome.SKIPPED_BUDGET, status=status,
                                                 next_refresh_available_at=next_at))
            await self._start(chosen)
        self.progress.listing_done = True
        await self._queue.join()
        for task in refreshers:
            task.cancel()
        await asyncio.gather(*refreshers, return_exceptions=True)
        await awaiter

    # --- progress --------------------------------------------------------------------------------------------
    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.progress_interval)
            await self._report()

    async def _report(self) -> None:
        if self._on_progress is not None:
            result = self._on_progress(self.progress, self.client)
            if asyncio.iscoroutine(result):
                await result
