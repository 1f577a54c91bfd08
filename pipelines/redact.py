"""Removes Stripe secrets (API keys, webhook secrets) from any text before it is logged or stored."""

from __future__ import annotations

import re

_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+|\bwhsec_[A-Za-z0-9*]+|\bBearer\s+\S+")


def redact(text: str) -> str:
    """Replace anything shaped like a Stripe key, a webhook secret or a bearer token with `[redacted]`."""
    return _SECRET.sub("[redacted]", text)
