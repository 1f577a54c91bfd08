"""What an account says ahead of time about going bad: its account numbers' best status, its deactivation date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.contract.values import ACCOUNT_NUMBER_STATUSES

# Rank of each known account number status, best first; a value Stripe added ranks between pending and expired.
_RANK = {status: rank * 2 for rank, status in enumerate(ACCOUNT_NUMBER_STATUSES)}
_UNKNOWN_RANK = _RANK[ACCOUNT_NUMBER_STATUSES[1]] + 1  # right after pending, before expired


def best_account_number_status(account_numbers: Any) -> str | None:
    """The best `status` among an account's `account_numbers` (order: ACCOUNT_NUMBER_STATUSES); None when it has none.

    Stripe's enum is open, so any non-empty string is kept as sent (of two unknown values, the alphabetically first).
    """
    if not isinstance(account_numbers, list | tuple):
        return None
    statuses = [n.get("status") for n in account_numbers if isinstance(n, Mapping)]
    given = [s for s in statuses if isinstance(s, str) and s]
    if not given:
        return None
    return min(given, key=lambda s: (_RANK.get(s, _UNKNOWN_RANK), s))


def expected_deactivation_date(account: Mapping[str, Any]) -> Any:
    """status_details.active.expected_deactivation_date as sent (unix seconds), None when Stripe says nothing."""
    details = account.get("status_details")
    active = details.get("active") if isinstance(details, Mapping) else None
    return active.get("expected_deactivation_date") if isinstance(active, Mapping) else None
