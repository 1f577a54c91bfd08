"""Reads the refresh-policy settings (FC_BALANCES_MAX_AGE_HOURS, _MAX_REFRESHES, _REFRESH_PRICE...) in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pipelines.settings import SettingsError, env_float
from pipelines.stripe_fc.policy import parse_price

DEFAULT_CHECK_RESERVE_RPS = 2.0


def _raw(name: str, env: Mapping[str, str]) -> str:
    return env.get(name, "").strip()


def check_reserve_rps(env: Mapping[str, str] | None = None) -> float:
    """Requests/s of every limit kept for funds checks: runs use the limit minus this, checks use this."""
    environ = env if env is not None else os.environ
    value = env_float("FC_BALANCES_CHECK_RESERVE_RPS", DEFAULT_CHECK_RESERVE_RPS, environ, minimum=None)
    if value is None or value < 0:
        raw = _raw("FC_BALANCES_CHECK_RESERVE_RPS", environ)
        raise SettingsError(f"FC_BALANCES_CHECK_RESERVE_RPS must be 0 or more, got {raw!r}")
    return value


def policy_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The StripeResource fields of the refresh policy, from the environment; one line naming a bad variable."""
    environ = env if env is not None else os.environ
    max_refreshes: int | None = None
    raw = _raw("FC_BALANCES_MAX_REFRESHES", environ)
    if raw:
        if not raw.isdigit():
            raise SettingsError(f"FC_BALANCES_MAX_REFRESHES must be a whole number of 0 or more, got {raw!r}")
        max_refreshes = int(raw)
    price = _raw("FC_BALANCES_REFRESH_PRICE", environ) or None
    if price is not None:
        try:
            parse_price(price)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    return {
        "max_age_hours": env_float("FC_BALANCES_MAX_AGE_HOURS", None, environ),
        "max_refreshes": max_refreshes,
        "refresh_price": price,
        "check_reserve_rps": check_reserve_rps(environ),
    }
