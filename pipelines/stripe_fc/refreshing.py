"""Refreshing: workers that take queued accounts and request their refresh, one idempotency key per run."""

from __future__ import annotations

import time

import stripe

from pipelines.contract.values import RefreshOutcome, RefreshStatus
from pipelines.redact import redact
from pipelines.stripe_fc.records import INACTIVE_CODE, RefreshRecord
from pipelines.stripe_fc.state import EngineState, Pending


class RefreshingStage(EngineState):
    """Requests refreshes; a refresh left pending is handed to the awaiting stage."""

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
            outcome = RefreshOutcome.SKIPPED_INACTIVE if code == INACTIVE_CODE else RefreshOutcome.ERROR
            await self._record(RefreshRecord(self.run_id, account_id, outcome, requested_at=requested_at,
                                             error_code=code or f"http_{exc.http_status}"))
            return
        except stripe.StripeError as exc:
            # Exhausted retries on 5xx/429 for this one account: record it and let the run go on.
            code = (exc.error.code if exc.error else None) or f"http_{exc.http_status}"
            await self._record(RefreshRecord(self.run_id, account_id, RefreshOutcome.ERROR, requested_at=requested_at,
                                             error_code=redact(str(code))))
            return
        finally:
            self._requesting.discard(account_id)
            early = self._early.pop(account_id, None)
        refresh = account.get("balance_refresh") or {}
        if refresh.get("status") == RefreshStatus.PENDING:
            now = time.monotonic()
            pending = Pending(refresh.get("last_attempted_at"), requested_at, now, now)
            if early is not None and self._is_completion_of(early[0], pending):
                await self._resolve(account_id, early[0], requested_at, completed_at=early[1])
                return
            self._pending[account_id] = pending
            self.progress.pending = len(self._pending)
        else:
            await self._resolve(account_id, account, requested_at, completed_at=time.time())
