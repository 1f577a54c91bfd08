"""A faithful, stateful local stand-in for Stripe's Financial Connections API (see README, DESIGN.md)."""

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.fixtures import FixtureError, load_fixtures_file
from stripe_sandbox.objects import API_VERSION
from stripe_sandbox.runner import Sandbox, start_sandbox

__all__ = ["API_VERSION", "FixtureError", "Sandbox", "SandboxConfig", "load_fixtures_file", "start_sandbox"]
