"""Batches what the refresh engine observes, normalizes it and writes it to the warehouse while the run goes on."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipelines.normalize.normalizer import normalize_accounts, normalize_balances, refreshes_table
from pipelines.settings import default
from pipelines.stripe_fc.engine import RefreshRecord
from pipelines.warehouse import NormalizedBatch, Warehouse

DEFAULT_BATCH_SIZE: int = default("FC_BALANCES_BATCH_SIZE")


class WarehouseSink:
    """The engine's RunSink: buffers accounts and refresh records, flushes them as one transaction per batch.

    A batch is flushed when it holds `batch_size` accounts or is `flush_seconds` old, in a worker thread so the
    event loop keeps requests flowing. Memory is bounded by the batch, never by the run.
    """

    def __init__(self, warehouse: Warehouse, batch_size: int = DEFAULT_BATCH_SIZE, flush_seconds: float = 5.0) -> None:
        self.warehouse = warehouse
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.inserted: Counter[str] = Counter()
        self.batches = 0
        self.seen: set[str] = set()  # accounts observed this run, as Stripe holds them now
        self._accounts: dict[str, Mapping[str, Any]] = {}  # latest state per account in this batch
        self._balance_sources: list[Mapping[str, Any]] = []  # every account dict seen: each balance is recorded
        self._refreshes: list[dict[str, Any]] = []
        self._opened = time.monotonic()
        self._lock = asyncio.Lock()

    async def account_observed(self, account: Mapping[str, Any], final: bool) -> None:
        account_id = account.get("id")
        if isinstance(account_id, str):
            self._accounts[account_id] = account
            self.seen.add(account_id)
        if account.get("balance") is not None or not isinstance(account_id, str):
            self._balance_sources.append(account)
        await self._maybe_flush()

    async def refresh_recorded(self, record: RefreshRecord) -> None:
        self._refreshes.append(record.as_dict())
        await self._maybe_flush()

    async def _maybe_flush(self) -> None:
        size = len(self._balance_sources) + len(self._refreshes)
        if size >= self.batch_size or (size and time.monotonic() - self._opened >= self.flush_seconds):
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered (if anything) and wait until it is committed."""
        async with self._lock:
            accounts, sources, refreshes = list(self._accounts.values()), self._balance_sources, self._refreshes
            self._accounts, self._balance_sources, self._refreshes = {}, [], []
            self._opened = time.monotonic()
            if not (accounts or sources or refreshes):
                return
            inserted = await asyncio.to_thread(self._write, accounts, sources, refreshes)
            self.inserted.update(inserted)
            self.batches += 1

    def _write(self, accounts: list[Mapping[str, Any]], sources: list[Mapping[str, Any]],
               refreshes: list[dict[str, Any]]) -> dict[str, int]:
        now = datetime.now(UTC)
        balances = normalize_balances(sources, fetched_at=now)
        batch = NormalizedBatch(
            accounts=normalize_accounts(accounts, observed_at=now) if accounts else None,
            balances=balances.balances,
            rejected=balances.rejected,
            refreshes=refreshes_table(refreshes) if refreshes else None,
        )
        return self.warehouse.write_batch(batch)
