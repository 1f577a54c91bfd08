"""Every FC_BALANCES_* / STRIPE_* setting declared once (variable, type, default, bound, meaning), read into typed
values with one clear line naming the variable on bad input; the README's settings table is generated from here."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any, Literal

Kind = Literal["number", "whole", "text", "secret", "choice", "date", "memory", "price"]
# Where a setting is read: "run" settings are validated by `fc-balances run` before its first request to Stripe.
Scope = Literal["run", "command"]
_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Setting:
    """One setting: its variable, type, default (None: unset), bound and meaning, and who reads it."""

    variable: str
    kind: Kind
    meaning: str
    read_by: str  # the resource field (or command) that reads it, for the README
    default: Any = None
    shown_default: str | None = None  # the README's default when it is not a plain value (computed, or unset)
    minimum: float | date | None = None
    above_minimum: bool = False  # True: the minimum itself is refused (0 makes no sense for this setting)
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    scope: Scope = "run"

    def raw(self, env: Mapping[str, str] | None = None) -> str:
        return (env if env is not None else os.environ).get(self.variable, "").strip()

    def read(self, env: Mapping[str, str] | None = None) -> Any:
        """The variable's value, parsed and bound-checked; the default when it is unset or blank."""
        raw = self.raw(env)
        return self.default if not raw else self.parse(raw)

    def resolve(self, given: Any = None, env: Mapping[str, str] | None = None) -> Any:
        """A value set on a resource or config (checked against the same bound), else the variable's value."""
        if given is None or (isinstance(given, str) and not given.strip()):
            return self.read(env)
        if self.kind in ("number", "whole"):
            return self._bounded(given, repr(given), f"the value given for {self.variable}")
        return self.parse(str(given))

    def parse(self, raw: str) -> Any:
        if self.kind == "number":
            try:
                value: Any = float(raw)
            except ValueError:
                raise SettingsError(f"{self.variable} must be a number, got {raw!r}") from None
            return self._bounded(value, repr(raw))
        if self.kind == "whole":
            if not re.fullmatch(r"[+-]?\d+", raw):
                raise SettingsError(f"{self.variable} must be a whole number of {self._low()}, got {raw!r}")
            return self._bounded(int(raw), repr(raw))
        if self.kind == "choice" and raw not in self.choices:
            raise SettingsError(f"{self.variable} must be one of {', '.join(self.choices)}, got {raw!r}")
        if self.kind == "date":
            return self._date(raw)
        if self.kind == "memory" and not _MEMORY_LIMIT.match(raw):
            raise SettingsError(f"{self.variable} must look like 1GB or 512MB, got {raw!r}")
        if self.kind == "price":
            return str(parse_price(raw, self.variable))
        return raw

    def _low(self) -> str:
        assert isinstance(self.minimum, (int, float))
        if self.above_minimum:  # a whole number above n is n + 1 or more
            return f"{self.minimum + 1:g} or more" if self.kind == "whole" else f"more than {self.minimum:g}"
        return f"{self.minimum:g} or more"

    def _bounded(self, value: float, shown: str, source: str | None = None) -> Any:
        name = source or self.variable
        if self.kind == "whole" and (not isinstance(value, int) or isinstance(value, bool)):
            if not (isinstance(value, float) and value.is_integer()):
                raise SettingsError(f"{name} must be a whole number of {self._low()}, got {shown}")
            value = int(value)
        low, high = self.minimum, self.maximum
        assert low is None or isinstance(low, (int, float))
        if math.isnan(value):
            raise SettingsError(f"{name} must be a number, got {shown}")
        if high is not None and low is not None and not low <= value <= high:
            raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {shown}")
        if low is not None and (value <= low if self.above_minimum else value < low):
            if self.kind == "whole":
                raise SettingsError(f"{name} must be a whole number of {self._low()}, got {shown}")
            bound = f"greater than {low:g}" if self.above_minimum else f"{low:g} or more"
            raise SettingsError(f"{name} must be {bound}, got {shown}")
        return value

    def _date(self, raw: str) -> date:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise SettingsError(f"{self.variable} must be a date like {self.default}, got {raw!r}") from None
        if isinstance(self.minimum, date) and day < self.minimum:
            raise SettingsError(f"{self.variable} must be {self.minimum} or later, got {day}")
        return day

    def readme_default(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "unset"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)


def parse_price(raw: str, name: str = "FC_BALANCES_REFRESH_PRICE") -> Decimal:
    """A price as a finite decimal of 0 or more, or one line naming the setting."""
    try:
        price = Decimal(raw.strip())
    except InvalidOperation:
        raise SettingsError(f"{name} must be a decimal number, got {raw!r}") from None
    if not price.is_finite() or price < 0:
        raise SettingsError(f"{name} must be a finite decimal of 0 or more, got {raw!r}")
    return price


# The first Dagster daily partition: fixed when the definitions load, before any setting is read, so
# FC_BALANCES_HISTORY_START may only move the first built day later.
EARLIEST_HISTORY_START = date(2024, 1, 1)

# Where the event store lives when FC_BALANCES_EVENT_STORE is unset, under the warehouse folder.
EVENT_STORE_RELATIVE = PurePosixPath("events") / "webhook_events.sqlite"

# THE settings, in the README's order. To add one: one entry here (then `make docs`), and read it where it is used
# with SETTINGS["FC_BALANCES_..."].resolve(field) (a resource field) or .read() (a command).
_DECLARED: tuple[Setting, ...] = (
    Setting("STRIPE_API_KEY", "secret", "secret or restricted key", "`stripe.api_key` (`dg.EnvVar`)",
            shown_default="unset: `fc-balances run` uses the built-in sandbox with demo data"),
    Setting("STRIPE_API_BASE", "text", "API base address", "`stripe.api_base`", default="https://api.stripe.com",
            shown_default="`https://api.stripe.com`"),
    Setting("FC_BALANCES_WAREHOUSE", "text", "folder holding `fc_balances.duckdb` and, by default, the Iceberg "
            "catalog under `iceberg/`",
            "`warehouse.directory`", default="warehouse", shown_default="`./warehouse`"),
    Setting("FC_BALANCES_ICEBERG_CATALOG", "secret", "pyiceberg catalog properties as a JSON object, for "
            "production: a PostgreSQL `SqlCatalog` (`{\"type\": \"sql\", \"uri\": \"postgresql+psycopg2://...\", "
            "\"warehouse\": \"s3://bucket/prefix\"}`) or a REST catalog (`{\"type\": \"rest\", \"uri\": ...}`); "
            "may hold credentials, so never shown", "`warehouse.iceberg_catalog`",
            shown_default="SQLite `SqlCatalog` at `<warehouse>/iceberg/catalog.db`, data under `<warehouse>/iceberg/`"),
    Setting("FC_BALANCES_MAX_RPS", "number", "global requests/s (0 refused: a run could make no request)",
            "`stripe.max_rps`", minimum=0.0, above_minimum=True,
            shown_default="25 for `sk_test_`/`rk_test_` keys, 100 otherwise (Stripe's limits)"),
    Setting("FC_BALANCES_MAX_RPS_PER_ENDPOINT", "number", "requests/s per endpoint (0 refused)",
            "`stripe.max_rps_per_endpoint`", minimum=0.0, above_minimum=True, shown_default="25"),
    Setting("FC_BALANCES_DISCOVERY", "choice", "`per_customer` or `all`", "`stripe.discovery`",
            default="per_customer", choices=("per_customer", "all"), shown_default="`per_customer`"),
    Setting("FC_BALANCES_REFRESH_TIMEOUT", "number", "seconds a refresh may stay pending before it is recorded "
            "`timed_out` (0: not awaited at all)", "`stripe.refresh_timeout_seconds`", default=600.0, minimum=0.0),
    Setting("FC_BALANCES_EVENT_GRACE", "number", "seconds without an event before an account is retrieved "
            "directly (0: at once)", "`stripe.event_grace_seconds`", default=20.0, minimum=0.0),
    Setting("FC_BALANCES_POLL_INTERVAL", "number", "seconds between reads of the events API while refreshes are "
            "pending (0 refused: it would read without pause)", "`stripe.poll_interval_seconds`", default=1.0,
            minimum=0.0, above_minimum=True),
    # 5000, not 2000: each write opens, commits and checkpoints the DuckDB file, and Python's heap grew with every
    # write (the README's benchmark rows of 2026-12-07 compare the two). At live limits the 5 s flush comes first.
    Setting("FC_BALANCES_BATCH_SIZE", "whole", "rows buffered before a warehouse write (0 refused)",
            "`warehouse.batch_size`", default=5000, minimum=0, above_minimum=True),
    Setting("FC_BALANCES_LOCK_TIMEOUT", "number", "seconds a run's step (writing or reading) waits for another "
            "run's writing step (0: fail at once)", "`warehouse.lock_timeout_seconds`", default=60.0, minimum=0.0),
    Setting("FC_BALANCES_STALENESS_HOURS", "number", "warn when an active account's newest balance is older",
            "check config `staleness_hours`", default=48.0, minimum=0.0),
    Setting("FC_BALANCES_MAX_FAILURE_RATE", "number", "warn when the last run's refresh failure rate is higher "
            "(0 to 1)", "check config `max_failure_rate`", default=0.25, minimum=0.0, maximum=1.0),
    Setting("FC_BALANCES_CLOCK_SKEW_SECONDS", "number", "how far in the future an `as_of` may be before the check "
            "fails", "check config `clock_skew_seconds`", default=300.0, minimum=0.0),
    Setting("FC_BALANCES_HISTORY_START", "date", "first UTC day of the daily marts "
            f"({EARLIEST_HISTORY_START} or later: the Dagster partitions start there)", "`warehouse.history_start`",
            default=EARLIEST_HISTORY_START, minimum=EARLIEST_HISTORY_START),
    Setting("FC_BALANCES_CARRY_FORWARD_DAYS", "whole", "days a balance is carried forward in `fc_daily_balances` "
            "after its observation (change it, then `fc-balances marts --full`)", "`warehouse.carry_forward_days`",
            default=31, minimum=0),
    Setting("FC_BALANCES_MART_SHARDS", "whole", "account hash shards of the partitioned marts, read when the "
            "definitions are built: above 1, each shard is a Dagster step reading Iceberg into its own in-memory "
            "DuckDB, without the writer lock, and `fc_marts_sharded_job` runs them side by side",
            "`warehouse.mart_shards`", default=1, minimum=0, above_minimum=True, maximum=64),
    Setting("FC_BALANCES_DUCKDB_MEMORY_LIMIT", "memory", "memory limit of every DuckDB connection; past it DuckDB "
            "spills to `<warehouse>/.duckdb_spill/`. While a mart builds or a table publishes, DuckDB gives up what "
            "the process holds outside it, down to a floor (README, History benchmark: Memory), so the process stays "
            "near it", "`warehouse.duckdb_memory_limit`", default="1GB"),
    Setting("FC_BALANCES_MAX_AGE_HOURS", "number", "skip accounts whose newest known balance is younger "
            "(`skipped_fresh`; 0 refused: unset it to refresh every account)", "`stripe.max_age_hours`",
            minimum=0.0, above_minimum=True),
    Setting("FC_BALANCES_MAX_REFRESHES", "whole", "refresh requests per run at most (`skipped_budget` beyond; "
            "0: none)", "`stripe.max_refreshes`", minimum=0),
    Setting("FC_BALANCES_REFRESH_PRICE", "price", "price of one refresh (decimal), for the cost figures",
            "`stripe.refresh_price`"),
    Setting("FC_BALANCES_CHECK_RESERVE_RPS", "number", "requests/s of every limit kept for `funds-check` and "
            "`serve` (one limiter for the whole service; 0: the run uses the whole limit, and checks pace at the "
            "default)", "`stripe.check_reserve_rps`; `funds-check` and `serve` read the variable", default=2.0,
            minimum=0.0),
    Setting("STRIPE_WEBHOOK_SECRET", "secret", "endpoint secret for `fc-balances webhooks` and the webhook route "
            "of `serve`; several, comma-separated, while one is rolled",
            "none: read by `fc-balances webhooks` and `serve` when they start", scope="command"),
    Setting("FC_BALANCES_SERVICE_TOKEN", "secret", "bearer token(s) the funds service accepts on `/v1/`; several, "
            "comma-separated, while one is rotated; each at least 16 characters",
            "none: read by `fc-balances serve` when it starts", shown_default="unset: `serve` refuses to start",
            scope="command"),
    Setting("FC_BALANCES_DEACTIVATION_WARNING_DAYS", "whole", "`fc_account_health` says `deactivating_soon` when "
            "Stripe expects the account's deactivation within this many days (0: only once the date has come)",
            "`fc_account_health`, `funds-check` and `serve` read the variable", default=14, minimum=0),
    Setting("FC_BALANCES_REFRESH_FAILURES", "whole", "`fc_account_health` says `refresh_failing` after this many "
            "failed refreshes in a row (0 refused)", "`fc_account_health`, `funds-check` and `serve` read the "
            "variable", default=3, minimum=0, above_minimum=True),
    Setting("FC_BALANCES_EVENT_STORE", "text", "the webhook/event store (SQLite)", "`warehouse.event_store`",
            shown_default=f"`<warehouse>/{EVENT_STORE_RELATIVE}`"),
    Setting("FC_BALANCES_EVENT_RETENTION_DAYS", "number", "applied events older than this (by creation and by "
            "landing) leave the event store (0: as soon as they are applied)", "`warehouse.event_retention_days`",
            default=35.0, minimum=0.0),
)
SETTINGS: dict[str, Setting] = {setting.variable: setting for setting in _DECLARED}
assert len(SETTINGS) == len(_DECLARED), "a setting is declared twice"


def default(variable: str) -> Any:
    """A setting's declared default (for a signature's default value: the fact stays here)."""
    return SETTINGS[variable].default


def read(variable: str, env: Mapping[str, str] | None = None) -> Any:
    return SETTINGS[variable].read(env)


def validate(scope: Scope = "run", env: Mapping[str, str] | None = None,
             settings: Iterable[Setting] | None = None) -> None:
    """Read every setting of `scope` once, so a bad one fails with its line before any work starts."""
    for setting in settings if settings is not None else SETTINGS.values():
        if setting.scope == scope:
            setting.read(env)


def env_text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A text setting, stripped; None when unset or blank."""
    return (env if env is not None else os.environ).get(name, "").strip() or None


def warehouse_dir(env: Mapping[str, str] | None = None) -> str:
    return str(read("FC_BALANCES_WAREHOUSE", env))


def readme_settings() -> str:
    """The README's settings table, generated from the declarations (`make docs`)."""
    rows = ["| variable | resource field | meaning | default |", "|---|---|---|---|"]
    for s in _DECLARED:
        meaning = s.meaning.replace("|", "\\|")
        rows.append(f"| `{s.variable}` | {s.read_by} | {meaning} | {s.readme_default()} |")
    return "\n".join(rows) + "\n"
