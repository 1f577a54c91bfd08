"""Sandbox configuration: start-time options and the runtime settings that can change while serving."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

PERMISSION_NAMES = frozenset({
    "customers_read",
    "customers_write",
    "financial_connections_accounts_read",
    "financial_connections_accounts_write",
    "events_read",
})


@dataclass
class SandboxConfig:
    """Everything `start_sandbox` needs; the fields in RUNTIME_FIELDS may also change while it runs."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "sk_test_sandbox"
    mode: str = "test"
    seed: int = 42
    demo_customers: int = 0
    fixtures: dict[str, Any] | None = None
    rate_limit: bool = True
    rate_limit_global: float | None = None
    rate_limit_endpoint: float = 25.0
    refresh_latency: tuple[float, float] = (1.0, 1.0)
    refresh_cooldown: float = 3600.0
    fault_rate: float = 0.0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    clock_offset: float = 0.0
    restricted_keys: dict[str, set[str]] = field(default_factory=dict)
    # Beyond the brief: knobs for generated outcomes, faults and webhook retries.
    refresh_failure_rate: float = 0.1
    fault_slow_seconds: float = 1.0
    webhook_max_attempts: int = 6
    webhook_retry_base: float = 0.5
    # Test-only: keep every /v1 response (method, path, status, body) in server.recorded for spec checks.
    record_responses: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("test", "live"):
            raise ValueError(f"mode must be 'test' or 'live', not {self.mode!r}")
        if not isinstance(self.api_key, str) or not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        if not isinstance(self.demo_customers, int) or self.demo_customers < 0:
            raise ValueError("demo_customers must be an integer >= 0")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError("port must be an integer in 0..65535")
        for name, value in validate_settings({name: getattr(self, name) for name in RUNTIME_FIELDS}).items():
            setattr(self, name, value)

    @property
    def livemode(self) -> bool:
        return self.mode == "live"

    def effective_global_rate(self) -> float:
        if self.rate_limit_global is not None:
            return self.rate_limit_global
        return 100.0 if self.livemode else 25.0


RUNTIME_FIELDS = (
    "rate_limit",
    "rate_limit_global",
    "rate_limit_endpoint",
    "refresh_latency",
    "refresh_cooldown",
    "fault_rate",
    "webhook_url",
    "webhook_secret",
    "clock_offset",
    "restricted_keys",
    "refresh_failure_rate",
    "fault_slow_seconds",
    "webhook_max_attempts",
    "webhook_retry_base",
)
assert set(RUNTIME_FIELDS) <= {f.name for f in fields(SandboxConfig)}


def _number(name: str, value: Any, *, minimum: float = 0.0, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, not {value!r}")
    return float(value)


def parse_latency(value: Any) -> tuple[float, float]:
    """A latency given as a number, `[min, max]`, or the CLI's `MIN-MAX` string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if "-" in text[1:]:
                low_text, high_text = text.split("-", 1)
                value = (float(low_text), float(high_text))
            else:
                value = float(text)
        except ValueError:
            raise ValueError(f"refresh_latency must be SECONDS or MIN-MAX, not {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _number("refresh_latency", value)
        return (seconds, seconds)
    if isinstance(value, list | tuple) and len(value) == 2:
        low = _number("refresh_latency min", value[0])
        high = _number("refresh_latency max", value[1])
        if low > high:
            raise ValueError(f"refresh_latency min {low} is above max {high}")
        return (low, high)
    raise ValueError(f"refresh_latency must be a number or (min, max), not {value!r}")


def validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise runtime settings; ValueError names the first bad one."""
    clean: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in RUNTIME_FIELDS:
            raise ValueError(f"unknown setting {name!r} (runtime settings: {', '.join(RUNTIME_FIELDS)})")
        if name == "rate_limit":
            if not isinstance(value, bool):
                raise ValueError(f"rate_limit must be true or false, not {value!r}")
            clean[name] = value
        elif name == "rate_limit_global":
            clean[name] = None if value is None else _number(name, value, minimum=0.001)
        elif name == "rate_limit_endpoint":
            clean[name] = _number(name, value, minimum=0.001)
        elif name == "refresh_latency":
            clean[name] = parse_latency(value)
        elif name in ("refresh_cooldown", "fault_slow_seconds", "webhook_retry_base"):
            clean[name] = _number(name, value)
        elif name in ("fault_rate", "refresh_failure_rate"):
            clean[name] = _number(name, value, maximum=1.0)
        elif name == "clock_offset":
            clean[name] = _number(name, value, minimum=-math.inf)
        elif name == "webhook_max_attempts":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"webhook_max_attempts must be an integer >= 1, not {value!r}")
            clean[name] = value
        elif name == "webhook_url":
            if value is not None and (not isinstance(value, str) or not value.startswith(("http://", "https://"))):
                raise ValueError("webhook_url must be an http(s) URL or null")
            clean[name] = value
        elif name == "webhook_secret":
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError("webhook_secret must be a non-empty string or null")
            clean[name] = value
        elif name == "restricted_keys":
            clean[name] = _restricted_keys(value)
    return clean


def _restricted_keys(value: Any) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        raise ValueError("restricted_keys must map a key to a list of permissions")
    keys: dict[str, frozenset[str]] = {}
    for key, permissions in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError("restricted_keys: every key must be a non-empty string")
        if isinstance(permissions, str) or not isinstance(permissions, list | tuple | set | frozenset):
            raise ValueError("restricted_keys: permissions must be a list of names")
        unknown = sorted(set(permissions) - PERMISSION_NAMES)
        if unknown:
            raise ValueError(
                f"restricted_keys: unknown permission {unknown[0]!r} (known: {', '.join(sorted(PERMISSION_NAMES))})"
            )
        keys[key] = frozenset(permissions)
    return keys
