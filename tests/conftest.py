"""Shared pytest fixtures: an in-process Stripe sandbox on a free loopback port, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stripe_sandbox import Sandbox, SandboxConfig, start_sandbox

# Defaults for tests: rate limits on, quick refreshes, a realistic cooldown, no demo data.
TEST_SANDBOX_DEFAULTS: dict[str, Any] = {
    "port": 0,
    "refresh_latency": (0.05, 0.05),
    "refresh_cooldown": 3600.0,
    "demo_customers": 0,
    "rate_limit": True,
}


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Call with SandboxConfig overrides to start a sandbox; every one started is stopped afterwards."""
    started: list[Sandbox] = []

    def factory(**overrides: Any) -> Sandbox:
        sandbox = start_sandbox(SandboxConfig(**{**TEST_SANDBOX_DEFAULTS, **overrides}))
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A running sandbox with the test defaults (empty; load fixtures with sandbox.load_fixtures)."""
    return sandbox_factory()
