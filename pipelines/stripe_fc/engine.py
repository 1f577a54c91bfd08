"""The refresh-and-await engine: discover accounts, refresh eligible ones, await outcomes, in overlapped stages."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import stripe

from pipelines.contract.tables import REFRESH_OUTCOMES
from pipelines.redact import redact
from pipelines.stripe_fc.client import REFRESHED_BALANCE_EVENT, StripeFCClient
from pipelines.stripe_fc.policy import BudgetPlanner, KnownState, PolicySettings, balance_as_of, newest_of

DiscoveryMode = Literal["per_customer", "all"]
OUTCOMES = REFRESH_OUTCOMES
INACTIVE_CODE = "financial_connections_account_inactive"


@dataclass(frozen=True)
class EngineSettings:
    discovery: DiscoveryMode = "per_customer"
    refresh_timeout: float = 600.0  # seconds an account may stay pending before it is recorded timed_out
    event_grace: float = 20.0  # seconds without an event before the account is retrieved directly
    poll_interval: float = 1.0  # seconds between reads of the events API while refreshes are pending
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
        return "skipped_inactive"
    if "balances" not in (account.get("permissions") or []):
        return "skipped_no_permission"
    refresh = account.get("balance_refresh") or {}
    if refresh.get("status") == "pending":
        return "await"
    next_at = refresh.get("next_refresh_available_at")
    if isinstance(next_at, int | float) and next_at > now:
        return "skipped_cooldown"
    return "refresh"


@dataclass
class _Pending:
    attempted_at: float | None  # balance_refresh.last_attempted_at of our refresh (Stripe's clock)
    requested_at: float | None  # our clock; None when the refresh was already pending when listed
    waiting_since: float  # monotonic
    last_checked: float  # monotonic


class RefreshEngine:
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
        self._pending: dict[str, _Pending] = {}
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
                await self._record(RefreshRecord(self.run_id, account_id, "skipped_budget", status=status,
                                                 next_refresh_available_at=next_at))
            await self._start(chosen)
        self.progress.listing_done = True
        await self._queue.join()
        for task in refreshers:
            task.cancel()
        await asyncio.gather(*refreshers, return_exceptions=True)
        await awaiter

    # --- discovery -------------------------------------------------------------------------------------------
    async def _discover(self) -> None:
        if self.settings.discovery == "all":
            async for page in self.client.list_accounts():
                for account in page:
                    await self._admit(account)
            return
        semaphore = asyncio.Semaphore(self.settings.listing_concurrency)
        listings: set[asyncio.Task[None]] = set()

        async def list_customer(customer_id: str) -> None:
            try:
                async for page in self.client.list_accounts(customer_id):
                    for account in page:
                        await self._admit(account)
            finally:
                semaphore.release()

        try:
            async for customers in self.client.list_customers():
                for customer in customers:
                    self.progress.customers_listed += 1
                    if self.is_forgotten(customer.get("id")):
                        self.progress.skipped_forgotten += 1
                        continue
                    await semaphore.acquire()
                    task = asyncio.create_task(list_customer(customer["id"]))
                    listings.add(task)
                    task.add_done_callback(listings.discard)
            while listings:
                await asyncio.gather(*list(listings))
        finally:
            for task in list(listings):
                task.cancel()

    async def _admit(self, account: dict[str, Any]) -> None:
        self.progress.accounts_listed += 1
        account_id = account["id"]
        holder = account.get("account_holder") or {}
        if self.is_forgotten(account_id) or self.is_forgotten(holder.get("customer")):
            self.progress.skipped_forgotten += 1
            return
        now = self.client.server_now()
        decision = classify(account, now)
        if decision == "refresh" and self.policy.active:
            decision = await self._apply_policy(account, now)
        elif self.planner is not None:
            await self._start(self.planner.listed(account_id))
        if decision == "held":
            return
        if decision == "refresh":
            await self.sink.account_observed(account, final=False)
            await self._queue.put(account_id)
        elif decision == "await":
            await self.sink.account_observed(account, final=False)
            now = time.monotonic()
            self._pending[account_id] = _Pending(
                attempted_at=(account.get("balance_refresh") or {}).get("last_attempted_at"),
                requested_at=None, waiting_since=now, last_checked=now,
            )
            self.progress.pending = len(self._pending)
        else:
            await self._record_skip(account, decision)

    async def _apply_policy(self, account: dict[str, Any], now: float) -> str:
        """`skipped_fresh`, `refresh` (no budget), or `held` for the budget to choose (started when provable)."""
        account_id = account["id"]
        newest = newest_of(self.known.newest_as_of.get(account_id), balance_as_of(account))
        max_age = self.policy.max_age_hours
        if max_age is not None and newest is not None and now - newest < max_age * 3600:
            if self.planner is not None:
                await self._start(self.planner.listed(account_id))
            return "skipped_fresh"
        if self.planner is None:
            return "refresh"
        await self.sink.account_observed(account, final=False)
        refresh = account.get("balance_refresh") or {}
        self._held[account_id] = (refresh.get("status"), refresh.get("next_refresh_available_at"))
        await self._start(self.planner.offer(account_id, newest))
        return "held"

    async def _start(self, ready: list[str]) -> None:
        """Accounts the budget has chosen: off to the refreshers."""
        for account_id in ready:
            self._held.pop(account_id, None)
            await self._queue.put(account_id)

    async def _record_skip(self, account: Mapping[str, Any], outcome: str) -> None:
        await self.sink.account_observed(account, final=True)
        refresh = account.get("balance_refresh") or {}
        await self._record(RefreshRecord(
            self.run_id, account["id"], outcome, status=refresh.get("status"),
            next_refresh_available_at=refresh.get("next_refresh_available_at"),
        ))

    # --- refresh ---------------------------------------------------------------------------------------------
    async def _refresh_worker(self) -> None:
        while True:
            account_id = await self._queue.get()
            self._refreshing += 1
            try:
                await self._refresh_one(account_id)
            finally:
                self._refreshing -= 1
                self._queue.task_done()

    async def _refresh_one(self, account_id: str) -> None:
        requested_at = time.time()
        self.progress.refresh_requested += 1
        self._requesting.add(account_id)
        try:
            account = await self.client.refresh_account(account_id, idempotency_key=f"fcb-{self.run_id}-{account_id}")
        except stripe.InvalidRequestError as exc:
            code = exc.code or (exc.error.code if exc.error else None)
            outcome = "skipped_inactive" if code == INACTIVE_CODE else "error"
            await self._record(RefreshRecord(self.run_id, account_id, outcome, requested_at=requested_at,
                                             error_code=code or f"http_{exc.http_status}"))
            return
        except stripe.StripeError as exc:
            # Exhausted retries on 5xx/429 for this one account: record it and let the run go on.
            code = (exc.error.code if exc.error else None) or f"http_{exc.http_status}"
            await self._record(RefreshRecord(self.run_id, account_id, "error", requested_at=requested_at,
                                             error_code=redact(str(code))))
            return
        finally:
            self._requesting.discard(account_id)
            early = self._early.pop(account_id, None)
        refresh = account.get("balance_refresh") or {}
        if refresh.get("status") == "pending":
            now = time.monotonic()
            pending = _Pending(refresh.get("last_attempted_at"), requested_at, now, now)
            if early is not None and self._is_completion_of(early[0], pending):
                await self._resolve(account_id, early[0], requested_at, completed_at=early[1])
                return
            self._pending[account_id] = pending
            self.progress.pending = len(self._pending)
        else:
            await self._resolve(account_id, account, requested_at, completed_at=time.time())

    # --- await -----------------------------------------------------------------------------------------------
    def _work_remaining(self) -> bool:
        return bool(self._pending) or not self.progress.listing_done or self._refreshing > 0 or not self._queue.empty()

    async def _await_loop(self) -> None:
        while self._work_remaining():
            await asyncio.sleep(self.settings.poll_interval)
            if self._pending or self._requesting:
                try:
                    await self._read_events()
                except stripe.StripeError:
                    # Retries are spent for this poll; the cursor is unchanged, so the next poll reads the same events.
                    self.progress.event_poll_errors += 1
                await self._retrieve_stragglers()
                await self._expire()

    async def _read_events(self) -> None:
        # With no cursor, no such event existed when the run began, so every event there is is one of ours.
        events, self._cursor = await self.client.events_after(REFRESHED_BALANCE_EVENT, self._cursor)
        self.progress.events_read += len(events)
        for event in events:
            account = ((event.get("data") or {}).get("object")) or {}
            account_id = account.get("id", "")
            pending = self._pending.get(account_id)
            if pending is None and account_id in self._requesting:
                self._early[account_id] = (account, event.get("created"))
                continue
            if pending is None or not self._is_completion_of(account, pending):
                continue
            await self._resolve(account["id"], account, pending.requested_at, completed_at=event.get("created"))

    @staticmethod
    def _is_completion_of(account: Mapping[str, Any], pending: _Pending) -> bool:
        refresh = account.get("balance_refresh") or {}
        if refresh.get("status") not in ("succeeded", "failed"):
            return False
        attempted = refresh.get("last_attempted_at")
        if pending.attempted_at is None:
            return True
        return isinstance(attempted, int | float) and attempted >= pending.attempted_at

    async def _retrieve_stragglers(self) -> None:
        now = time.monotonic()
        grace = self.settings.event_grace
        due = [aid for aid, p in self._pending.items() if now - p.last_checked >= grace]
        if not due:
            return
        semaphore = asyncio.Semaphore(self.settings.retrieve_concurrency)

        async def check(account_id: str) -> None:
            async with semaphore:
                pending = self._pending.get(account_id)
                if pending is None:
                    return
                pending.last_checked = time.monotonic()
                self.progress.retrieves += 1
                try:
                    account = await self.client.retrieve_account(account_id)
                except stripe.StripeError:
                    return  # try again after the next grace period; the deadline still applies
                if self._is_completion_of(account, pending) and account_id in self._pending:
                    await self._resolve(account_id, account, pending.requested_at, completed_at=time.time())

        await asyncio.gather(*(check(aid) for aid in due))

    async def _expire(self) -> None:
        now = time.monotonic()
        expired = [aid for aid, p in self._pending.items() if now - p.waiting_since >= self.settings.refresh_timeout]
        for account_id in expired:
            pending = self._pending.pop(account_id)
            await self._record(RefreshRecord(self.run_id, account_id, "timed_out",
                                             requested_at=pending.requested_at, status="pending"))
        self.progress.pending = len(self._pending)

    async def _resolve(self, account_id: str, account: Mapping[str, Any], requested_at: float | None,
                       completed_at: float | None) -> None:
        self._pending.pop(account_id, None)
        self.progress.pending = len(self._pending)
        refresh = account.get("balance_refresh") or {}
        status = refresh.get("status")
        outcome = status if status in ("succeeded", "failed") else "error"
        await self.sink.account_observed(account, final=True)
        await self._record(RefreshRecord(
            self.run_id, account_id, outcome, requested_at=requested_at, completed_at=completed_at,
            status=status, next_refresh_available_at=refresh.get("next_refresh_available_at"),
            error_code=None if outcome != "error" else "unexpected_refresh_status",
        ))

    async def _record(self, record: RefreshRecord) -> None:
        self.progress.outcomes[record.outcome] += 1
        await self.sink.refresh_recorded(record)

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


def eta_seconds(progress: Progress, refresh_rps: float) -> float | None:
    """Seconds left by the refresh endpoint's limit, once listing is done (before that the total is unknown)."""
    if not progress.listing_done:
        return None
    done = sum(progress.outcomes.values())
    remaining_requests = max(0, progress.accounts_listed - done - progress.pending)
    return remaining_requests / refresh_rps if refresh_rps else None


def format_progress(progress: Progress, client: StripeFCClient) -> str:
    """One human line: what is listed, requested, done, pending; the request rate against the limit; ETA."""
    stats = client.stats
    elapsed = max(progress.elapsed, 1e-9)
    global_rps, endpoint_rps = client.limiter.global_rps, client.limiter.endpoint_rps
    o = progress.outcomes
    skipped = sum(count for name, count in o.items() if name.startswith("skipped_"))
    eta = eta_seconds(progress, endpoint_rps or 0)
    parts = [
        f"{progress.elapsed:6.1f}s",
        f"listed {progress.accounts_listed} accounts" + ("" if progress.listing_done else " (listing)"),
        f"refresh requested {progress.refresh_requested}",
        f"succeeded {o['succeeded']} failed {o['failed']} pending {progress.pending}",
        f"timed out {o['timed_out']} skipped {skipped} errors {o['error']}",
        f"{stats.total / elapsed:.1f} req/s (limit {global_rps or 'none'}/s, {endpoint_rps or 'none'}/s per endpoint)",
        f"429s {stats.rate_limited}",
    ]
    if eta is not None:
        parts.append(f"ETA {eta:.0f}s")
    return " | ".join(parts)
