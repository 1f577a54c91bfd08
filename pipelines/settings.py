"""Reads the FC_BALANCES_* / STRIPE_* environment into typed values, failing with one clear line on bad input."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_WAREHOUSE = "warehouse"


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use; the message names it."""


def env_float(name: str, default: float | None, env: Mapping[str, str] | None = None,
              minimum: float | None = 0.0) -> float | None:
    raw = (env if env is not None else os.environ).get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value <= minimum:
        raise SettingsError(f"{name} must be greater than {minimum:g}, got {raw!r}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...], env: Mapping[str, str] | None = None) -> str:
    raw = (env if env is not None else os.environ).get(name, "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def env_text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A text setting, stripped; None when unset or blank."""
    return (env if env is not None else os.environ).get(name, "").strip() or None


def warehouse_dir(env: Mapping[str, str] | None = None) -> str:
    return (env if env is not None else os.environ).get("FC_BALANCES_WAREHOUSE", "").strip() or DEFAULT_WAREHOUSE
