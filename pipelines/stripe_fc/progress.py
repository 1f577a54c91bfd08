"""Progress of a run as people read it: the ETA by the refresh endpoint's limit and one line every few seconds."""

from __future__ import annotations

from pipelines.contract.values import SKIPPED_OUTCOMES, RefreshOutcome
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.stripe_fc.records import Progress


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
    skipped = sum(o[name] for name in SKIPPED_OUTCOMES)
    eta = eta_seconds(progress, endpoint_rps or 0)
    parts = [
        f"{progress.elapsed:6.1f}s",
        f"listed {progress.accounts_listed} accounts" + ("" if progress.listing_done else " (listing)"),
        f"refresh requested {progress.refresh_requested}",
        f"succeeded {o[RefreshOutcome.SUCCEEDED]} failed {o[RefreshOutcome.FAILED]} pending {progress.pending}",
        f"timed out {o[RefreshOutcome.TIMED_OUT]} skipped {skipped} errors {o[RefreshOutcome.ERROR]}",
        f"{stats.total / elapsed:.1f} req/s (limit {global_rps or 'none'}/s, {endpoint_rps or 'none'}/s per endpoint)",
        f"429s {stats.rate_limited}",
    ]
    if eta is not None:
        parts.append(f"ETA {eta:.0f}s")
    return " | ".join(parts)
