"""The refresh policy's figures for a run's metadata and summary: refreshes requested, saved, estimated cost."""

from __future__ import annotations

from typing import Any

from pipelines.contract.values import SAVED_OUTCOMES
from pipelines.stripe_fc.engine import Progress
from pipelines.stripe_fc.policy import PolicySettings, estimated_cost


def policy_metadata(progress: Progress, policy: PolicySettings) -> dict[str, Any]:
    """Plain values (cost as exact decimal text, never a float) for the materialization metadata."""
    saved = sum(progress.outcomes[name] for name in SAVED_OUTCOMES)
    values: dict[str, Any] = {"refreshes_saved_by_policy": saved}
    if policy.max_age_hours is not None:
        values["policy_max_age_hours"] = policy.max_age_hours
    if policy.max_refreshes is not None:
        values["policy_max_refreshes"] = policy.max_refreshes
        values["refreshes_started_before_listing_ended"] = progress.budget_started_early
    if policy.refresh_price is not None:
        values["refresh_price"] = str(policy.refresh_price)
        values["estimated_refresh_cost"] = str(estimated_cost(policy.refresh_price, progress.refresh_requested))
        values["estimated_cost_saved"] = str(estimated_cost(policy.refresh_price, saved))
    return values
