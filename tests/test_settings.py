"""The settings declared once: 0 means 0 where the bound allows it, the bound refuses it by name elsewhere, and a bad
value of any setting is one line naming its variable, read through the code that uses the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assets.checks import DataQualityConfig, resolve_thresholds
from pipelines.funds.answer import FundsCheckError
from pipelines.funds.check import stripe_access_from_env
from pipelines.marts.health import health_settings
from pipelines.resources import StripeResource, WarehouseResource
from pipelines.settings import SETTINGS, SettingsError, validate

LOOPBACK = "http://127.0.0.1:1"  # never contacted: building a client makes no request


def _stripe(**fields: Any) -> StripeResource:
    return StripeResource(api_key="sk_test_x", api_base=LOOPBACK, **fields)


# Each numeric setting as the run reads it: from the variable (no field set) and from a resource field set to 0.
# None as the field name: the setting has no field (account health reads the variable where it is built).
ZERO_READERS: dict[str, tuple[str | None, Callable[..., Any]]] = {
    "FC_BALANCES_MAX_RPS": ("max_rps", lambda **f: _stripe(**f).client().settings.max_rps),
    "FC_BALANCES_MAX_RPS_PER_ENDPOINT": (
        "max_rps_per_endpoint", lambda **f: _stripe(**f).client().settings.max_rps_per_endpoint),
    "FC_BALANCES_REFRESH_TIMEOUT": (
        "refresh_timeout_seconds", lambda **f: _stripe(**f).engine_settings().refresh_timeout),
    "FC_BALANCES_EVENT_GRACE": ("event_grace_seconds", lambda **f: _stripe(**f).engine_settings().event_grace),
    "FC_BALANCES_POLL_INTERVAL": ("poll_interval_seconds", lambda **f: _stripe(**f).engine_settings().poll_interval),
    "FC_BALANCES_MAX_AGE_HOURS": ("max_age_hours", lambda **f: _stripe(**f).policy_settings().max_age_hours),
    "FC_BALANCES_MAX_REFRESHES": ("max_refreshes", lambda **f: _stripe(**f).policy_settings().max_refreshes),
    "FC_BALANCES_CHECK_RESERVE_RPS": (
        "check_reserve_rps", lambda **f: _stripe(**f).client().settings.reserve_rps),
    "FC_BALANCES_BATCH_SIZE": ("batch_size", lambda **f: WarehouseResource(**f).rows_per_batch()),
    "FC_BALANCES_LOCK_TIMEOUT": ("lock_timeout_seconds", lambda **f: WarehouseResource(**f).open().lock_timeout),
    "FC_BALANCES_CARRY_FORWARD_DAYS": (
        "carry_forward_days", lambda **f: WarehouseResource(**f).history().carry_forward_days),
    "FC_BALANCES_MART_SHARDS": ("mart_shards", lambda **f: WarehouseResource(**f).shards()),
    "FC_BALANCES_EVENT_RETENTION_DAYS": (
        "event_retention_days", lambda **f: WarehouseResource(**f).retention_days()),
    "FC_BALANCES_STALENESS_HOURS": (
        "staleness_hours", lambda **f: resolve_thresholds(DataQualityConfig(**f)).staleness_hours),
    "FC_BALANCES_MAX_FAILURE_RATE": (
        "max_failure_rate", lambda **f: resolve_thresholds(DataQualityConfig(**f)).max_failure_rate),
    "FC_BALANCES_CLOCK_SKEW_SECONDS": (
        "clock_skew_seconds", lambda **f: resolve_thresholds(DataQualityConfig(**f)).clock_skew_seconds),
    "FC_BALANCES_DEACTIVATION_WARNING_DAYS": (None, lambda: health_settings().deactivation_warning_days),
    "FC_BALANCES_REFRESH_FAILURES": (None, lambda: health_settings().refresh_failures),
}
# Where 0 makes no sense: no request could be made, the events API would be read without pause, no row written,
# a max age of 0 would skip nothing (unset means that), and no shard would build the marts.
ZERO_REFUSED = {"FC_BALANCES_MAX_RPS", "FC_BALANCES_MAX_RPS_PER_ENDPOINT", "FC_BALANCES_POLL_INTERVAL",
                "FC_BALANCES_BATCH_SIZE", "FC_BALANCES_MAX_AGE_HOURS", "FC_BALANCES_REFRESH_FAILURES",
                "FC_BALANCES_MART_SHARDS"}
NUMERIC = [s.variable for s in SETTINGS.values() if s.kind in ("number", "whole")]


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in SETTINGS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(tmp_path / "wh"))


def test_every_numeric_setting_has_its_zero_test() -> None:
    assert sorted(ZERO_READERS) == sorted(NUMERIC)
    assert {v for v in NUMERIC if SETTINGS[v].above_minimum} == ZERO_REFUSED


@pytest.mark.parametrize("variable", NUMERIC)
def test_zero_means_zero_or_is_refused_by_name(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    field, reader = ZERO_READERS[variable]
    monkeypatch.setenv(variable, "0")
    if variable in ZERO_REFUSED:
        with pytest.raises(SettingsError, match=f"^{variable} must be") as refused:
            reader()
        assert "\n" not in str(refused.value)
        monkeypatch.delenv(variable)
        if field is not None:
            with pytest.raises(SettingsError, match=variable):
                reader(**{field: 0})
        return
    assert reader() == 0
    monkeypatch.delenv(variable)
    if field is not None:
        assert reader(**{field: 0}) == 0  # a field of 0 is 0, not the default (the old `value or default`)
    assert reader() == SETTINGS[variable].default  # and unset is the declared default


BAD_VALUES = {"number": "lots", "whole": "1.5", "choice": "some", "date": "yesterday", "memory": "a lot",
              "price": "cheap"}


@pytest.mark.parametrize("variable", [s.variable for s in SETTINGS.values() if s.kind in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = BAD_VALUES[SETTINGS[variable].kind]
    monkeypatch.setenv(variable, bad)
    with pytest.raises(SettingsError) as raised:
        validate()
    message = str(raised.value)
    assert message.startswith(f"{variable} must ") and repr(bad) in message and "\n" not in message


def test_numbers_outside_their_bounds_are_refused() -> None:
    rate = SETTINGS["FC_BALANCES_MAX_FAILURE_RATE"]
    assert rate.parse("1") == 1.0
    for bad in ("1.5", "-0.1", "nan"):
        with pytest.raises(SettingsError, match="FC_BALANCES_MAX_FAILURE_RATE"):
            rate.parse(bad)
    with pytest.raises(SettingsError, match="FC_BALANCES_LOCK_TIMEOUT must be 0 or more, got '-1'"):
        SETTINGS["FC_BALANCES_LOCK_TIMEOUT"].parse("-1")
    with pytest.raises(SettingsError, match="FC_BALANCES_HISTORY_START must be 2024-01-01 or later"):
        SETTINGS["FC_BALANCES_HISTORY_START"].parse("2023-12-31")


def test_the_funds_path_reads_the_same_declarations() -> None:
    env = {"STRIPE_API_KEY": "sk_test_x"}
    access = stripe_access_from_env(env)
    assert (access.api_base, access.reserve_rps) == (SETTINGS["STRIPE_API_BASE"].default,
                                                     SETTINGS["FC_BALANCES_CHECK_RESERVE_RPS"].default)
    with pytest.raises(FundsCheckError, match="FC_BALANCES_CHECK_RESERVE_RPS must be a number"):
        stripe_access_from_env({**env, "FC_BALANCES_CHECK_RESERVE_RPS": "fast"})
