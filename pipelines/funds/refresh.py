"""The funds check's one refresh: retrieve the account, refresh it if it can be, await the outcome by retrieve."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import stripe as stripe_sdk

from pipelines.contract.values import FINISHED_REFRESH_OUTCOMES, FundsRefreshOutcome, RefreshOutcome, RefreshStatus
from pipelines.funds.answer import FundsCheckError, StripeAccess
from pipelines.redact import redact
from pipelines.stripe_fc.client import ClientSettings, StripeFCClient, StripeFCError
from pipelines.stripe_fc.records import INACTIVE_CODE, classify

_WHY = {
    RefreshOutcome.SKIPPED_INACTIVE: "the account is not active",
    RefreshOutcome.SKIPPED_NO_PERMISSION: "the account does not grant the balances permission",
    RefreshOutcome.SKIPPED_COOLDOWN:
        "Stripe does not accept another refresh yet (next_refresh_available_at not reached)",
    FundsRefreshOutcome.SKIPPED_PENDING: "a refresh is already pending",
}


@dataclass(frozen=True)
class RefreshResult:
    outcome: str
    reason: str | None
    account: dict[str, Any] | None  # the account as last retrieved (its balance may be newer than the warehouse's)
    completed_at: int | None = None


def check_client(access: StripeAccess) -> StripeFCClient:
    # The check's own share of the limits: `reserve` per second overall and per endpoint, a second's worth at once,
    # which runs leave free by using the limit minus the same reserve.
    return StripeFCClient(ClientSettings(
        api_key=access.api_key, api_base=access.api_base, max_rps=access.reserve_rps,
        max_rps_per_endpoint=access.reserve_rps, burst_seconds=1.0, max_network_retries=2, timeout=10.0,
    ))


class UnknownAccountError(FundsCheckError):
    """Stripe has no such account."""


class StripeUnavailableError(FundsCheckError):
    """Stripe could not be asked (unreachable, failing, or refusing our key); nothing was learnt."""


async def refresh_account(access: StripeAccess, account_id: str, timeout: float) -> RefreshResult:
    """Refresh one account if it can be refreshed now and await the result, at most `timeout` seconds."""
    client = check_client(access)
    try:
        return await refresh_with(client, account_id, timeout, 1.0 / access.reserve_rps)
    finally:
        await client.aclose()


async def refresh_with(client: StripeFCClient, account_id: str, timeout: float, poll: float) -> RefreshResult:
    """`refresh_account` on a client the caller keeps (the service's one client, whose limiter every request shares)."""
    try:
        return await _refresh(client, account_id, timeout, poll)
    except stripe_sdk.InvalidRequestError as exc:
        code = exc.code or (exc.error.code if exc.error else None)
        if code == "resource_missing":
            raise UnknownAccountError(f"unknown account {account_id}: Stripe has no such account") from None
        raise StripeUnavailableError(f"Stripe refused the request: {redact(str(code or exc.http_status))}") \
            from None
    except StripeFCError as exc:
        raise StripeUnavailableError(str(exc)) from None
    except stripe_sdk.StripeError as exc:
        raise StripeUnavailableError(
            f"Stripe request failed: {redact(str(exc.http_status or type(exc).__name__))}") from None


async def _refresh(client: StripeFCClient, account_id: str, timeout: float, poll: float) -> RefreshResult:
    deadline = time.monotonic() + timeout
    account = await client.retrieve_account(account_id)
    decision = classify(account, client.server_now())
    if decision != "refresh":
        outcome = FundsRefreshOutcome.SKIPPED_PENDING if decision == "await" else decision
        return RefreshResult(outcome, _WHY[outcome], account)
    try:
        refreshed = await client.refresh_account(account_id, idempotency_key=f"fcb-check-{uuid.uuid4().hex}")
    except stripe_sdk.InvalidRequestError as exc:
        code = exc.code or (exc.error.code if exc.error else None)
        if code == INACTIVE_CODE:
            inactive = RefreshOutcome.SKIPPED_INACTIVE
            return RefreshResult(inactive, _WHY[inactive], account)
        why = f"the refresh request failed ({redact(str(code or exc.http_status))})"
        return RefreshResult(RefreshOutcome.ERROR, why, account)
    attempted = (refreshed.get("balance_refresh") or {}).get("last_attempted_at")
    current = refreshed
    asked = time.monotonic()
    step = 0
    while not _finished(current, attempted):
        step += 1
        # Polls at fixed steps from the request, within the check's share of the limits.
        wake = asked + step * poll
        if wake >= deadline:
            return RefreshResult(RefreshOutcome.TIMED_OUT, f"no result within {deadline - asked:.0f} s", current)
        await asyncio.sleep(max(0.0, wake - time.monotonic()))
        current = await client.retrieve_account(account_id)
    status = (current.get("balance_refresh") or {}).get("status")
    completed = int(client.server_now())
    if status == RefreshStatus.SUCCEEDED:
        return RefreshResult(RefreshOutcome.SUCCEEDED, None, current, completed)
    return RefreshResult(RefreshOutcome.FAILED, "the institution did not return a balance (refresh failed)", current,
                         completed)


def _finished(account: dict[str, Any], attempted: Any) -> bool:
    refresh = account.get("balance_refresh") or {}
    if refresh.get("status") not in FINISHED_REFRESH_OUTCOMES:
        return False
    last = refresh.get("last_attempted_at")
    return attempted is None or (isinstance(last, int | float) and last >= attempted)
