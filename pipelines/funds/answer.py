"""The funds check's answer and inputs: the answer type, its error, Stripe access, max-age and input validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipelines.normalize.currencies import ISO_4217_CODES

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}


DEFAULT_REFRESH_TIMEOUT = 60.0  # seconds a check waits for its refresh (the command's --timeout)


class FundsCheckError(Exception):
    """The check cannot answer (bad input, unknown account, no key, Stripe unreachable); one safe line."""


@dataclass(frozen=True)
class FundsAnswer:
    sufficient: bool | None
    basis: str
    balance_minor: int | None
    as_of: datetime | None
    staleness_hours: float | None
    refreshed: bool
    refresh_outcome: str  # not_needed, not_requested, succeeded, failed, timed_out, skipped_*, error
    reason: str | None = None
    # The account's relink reason (fc_account_health's list, e.g. deactivating_soon); never changes `sufficient`.
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values["warnings"] = list(self.warnings)
        values["as_of"] = self.as_of.isoformat() if self.as_of else None
        values["staleness_hours"] = None if self.staleness_hours is None else round(self.staleness_hours, 4)
        return values

    def line(self, account_id: str, amount_minor: int, currency: str) -> str:
        verdict = {True: "sufficient", False: "insufficient", None: "unknown"}[self.sufficient]
        age = "" if self.staleness_hours is None else f", {self.staleness_hours:.2f} h old"
        text = (f"{account_id} {amount_minor} {currency}: {verdict} (basis {self.basis}, balance_minor "
                f"{self.balance_minor}, as_of {self.as_of.isoformat() if self.as_of else None}{age}); "
                f"refreshed {str(self.refreshed).lower()}, refresh_outcome {self.refresh_outcome}")
        text += f": {self.reason}" if self.reason else ""
        return text + (f"; warnings: {', '.join(self.warnings)}" if self.warnings else "")


@dataclass(frozen=True)
class StripeAccess:
    api_key: str
    api_base: str
    reserve_rps: float  # the share of the limits kept for checks (FC_BALANCES_CHECK_RESERVE_RPS)


def parse_max_age(value: str | float | timedelta) -> timedelta:
    """`90s`, `30m`, `1h`, `2d`, or a number of hours; a timedelta or seconds from Python."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _AGE.match(str(value))
        if not match:
            raise FundsCheckError(f"max age must look like 90s, 30m, 1h or 2d, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise FundsCheckError("max age must be 0 or more")
    return timedelta(seconds=seconds)


def validate(account_id: str, amount_minor: Any, currency: str) -> tuple[int, str]:
    if not isinstance(account_id, str) or not re.fullmatch(r"fca_[A-Za-z0-9]+", account_id):
        raise FundsCheckError(f"unknown account {account_id!r}: Financial Connections ids look like fca_...")
    if isinstance(amount_minor, str):
        if not re.fullmatch(r"-?\d+", amount_minor.strip()):
            raise FundsCheckError(f"amount must be a whole number of minor units, got {amount_minor!r}")
        amount_minor = int(amount_minor)
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise FundsCheckError(f"amount must be a whole number of minor units, got {amount_minor!r}")
    if amount_minor < 0:
        raise FundsCheckError(f"amount must not be negative, got {amount_minor}")
    code = currency.strip().lower() if isinstance(currency, str) else ""
    if code not in ISO_4217_CODES:
        raise FundsCheckError(f"currency must be an ISO 4217 code such as usd, got {currency!r}")
    return amount_minor, code
