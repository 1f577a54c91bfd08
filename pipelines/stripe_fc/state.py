"""The state the engine's stages share, declared once; each stage (listing, refreshing, awaiting) is a mixin on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.stripe_fc.client import StripeFCClient
from pipelines.stripe_fc.policy import BudgetPlanner, KnownState, PolicySettings
from pipelines.stripe_fc.records import EngineSettings, Progress, RefreshRecord, RunSink


@dataclass
class Pending:
    attempted_at: float | None  # balance_refresh.last_attempted_at of our refresh (Stripe's clock)
    requested_at: float | None  # our clock; None when the refresh was already pending when listed
    waiting_since: float  # monotonic
    last_checked: float  # monotonic


class EngineState:
    """Attributes every stage reads or writes; RefreshEngine.__init__ sets them."""

    client: StripeFCClient
    sink: RunSink
    run_id: str
    settings: EngineSettings
    progress: Progress
    policy: PolicySettings
    known: KnownState
    planner: BudgetPlanner | None
    is_forgotten: Callable[[Any], bool]
    _queue: asyncio.Queue[str]
    _pending: dict[str, Pending]
    _refreshing: int
    _requesting: set[str]
    _early: dict[str, tuple[dict[str, Any], Any]]
    _cursor: str | None
    _held: dict[str, tuple[Any, Any]]

    async def _record(self, record: RefreshRecord) -> None:
        self.progress.outcomes[record.outcome] += 1
        await self.sink.refresh_recorded(record)
