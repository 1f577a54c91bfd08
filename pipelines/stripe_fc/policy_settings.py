"""The refresh-policy settings (FC_BALANCES_MAX_AGE_HOURS, _MAX_REFRESHES, _REFRESH_PRICE, _CHECK_RESERVE_RPS) as
the engine and the funds path read them; their types, defaults and bounds are declared in pipelines/settings.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.settings import default, read

DEFAULT_CHECK_RESERVE_RPS: float = default("FC_BALANCES_CHECK_RESERVE_RPS")


def check_reserve_rps(env: Mapping[str, str] | None = None) -> float:
    """Requests/s of every limit kept for funds checks: runs use the limit minus this, checks use this."""
    return float(read("FC_BALANCES_CHECK_RESERVE_RPS", env))


def policy_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The StripeResource fields of the refresh policy, from the environment; one line naming a bad variable."""
    return {
        "max_age_hours": read("FC_BALANCES_MAX_AGE_HOURS", env),
        "max_refreshes": read("FC_BALANCES_MAX_REFRESHES", env),
        "refresh_price": read("FC_BALANCES_REFRESH_PRICE", env),
        "check_reserve_rps": check_reserve_rps(env),
    }
