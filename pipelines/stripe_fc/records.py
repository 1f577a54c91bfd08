"""What the refresh engine works with: its settings, a refresh record, the sink it writes to, its progress."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pipelines.contract.values import REFRESH_OUTCOMES, RefreshOutcome, RefreshStatus
from pipelines.settings import default

DiscoveryMode = Literal["per_customer", "all"]
OUTCOMES = REFRESH_OUTCOMES
INACTIVE_CODE = "financial_connections_account_inactive"
_DISCOVERY, _REFRESH_TIMEOUT, _EVENT_GRACE, _POLL_INTERVAL = (default(f"FC_BALANCES_{name}") for name in (
    "DISCOVERY", "REFRESH_TIMEOUT", "EVENT_GRACE", "POLL_INTERVAL"))  # declared in pipelines/settings.py


@dataclass(frozen=True)
class EngineSettings:
    discovery: DiscoveryMode = _DISCOVERY
    refresh_timeout: float = _REFRESH_TIMEOUT  # seconds an account may stay pending before it is recorded timed_out
    event_grace: float = _EVENT_GRACE  # seconds without an event before the account is retrieved directly
    poll_interval: float = _POLL_INTERVAL  # seconds between reads of the events API while refreshes are pending
    listing_concurrency: int = 32
    refresh_concurrency: int = 48
    retrieve_concurrency: int = 16
    queue_size: int = 2000  # bounds memory: listing pauses while this many accounts wait for a refresh
    progress_interval: float = 5.0


@dataclass(frozen=True)
class RefreshRecord:
    """One row of fc_balance_refreshes; times are unix seconds as Stripe gives them (our clock where noted)."""

    run_id: str
    account_id: str
    outcome: str
    requested_at: float | None = None
    completed_at: float | None = None
    status: str | None = None
    next_refresh_available_at: float | None = None
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class RunSink(Protocol):
    """Where the engine hands what it observed; the warehouse writer implements it (the engine never writes)."""

    async def account_observed(self, account: Mapping[str, Any], final: bool) -> None: ...

    async def refresh_recorded(self, record: RefreshRecord) -> None: ...


@dataclass
class Progress:
    customers_listed: int = 0
    accounts_listed: int = 0
    listing_done: bool = False
    refresh_requested: int = 0
    pending: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    events_read: int = 0
    event_poll_errors: int = 0
    retrieves: int = 0
    skipped_forgotten: int = 0  # customers and accounts skipped because they were forgotten (never written)
    budget_started_early: int = 0  # refreshes the budget let start before the listing ended
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def classify(account: Mapping[str, Any], now: float) -> str:
    """`refresh`, `await` (a refresh is already pending) or the skip outcome, from the account as listed."""
    if account.get("status") != "active":
        return RefreshOutcome.SKIPPED_INACTIVE
    if "balances" not in (account.get("permissions") or []):
        return RefreshOutcome.SKIPPED_NO_PERMISSION
    refresh = account.get("balance_refresh") or {}
    if refresh.get("status") == RefreshStatus.PENDING:
        return "await"
    next_at = refresh.get("next_refresh_available_at")
    if isinstance(next_at, int | float) and next_at > now:
        return RefreshOutcome.SKIPPED_COOLDOWN
    return "refresh"
