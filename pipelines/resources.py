"""Dagster resources: the Stripe client and the warehouse; unset fields are read from the environment per run."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from pipelines.marts.build import HistorySettings
from pipelines.settings import SettingsError, env_choice, env_float, env_text, warehouse_dir
from pipelines.stripe_fc.client import STRIPE_API_BASE, ClientSettings, StripeFCClient
from pipelines.stripe_fc.engine import EngineSettings
from pipelines.stripe_fc.policy import PolicySettings, parse_price
from pipelines.stripe_fc.policy_settings import check_reserve_rps, policy_env
from pipelines.warehouse import Warehouse, open_reader

# A field left at None means "from this environment variable when the run starts, else the default". The
# environment is read inside the run, never at import, so `dagster dev` sees a changed setting on the next run.


def _number(value: float | None, env: str, default: float | None) -> float | None:
    if value is not None:
        return value
    return env_float(env, default)


class StripeResource(dg.ConfigurableResource):
    """A Stripe API key (restricted keys welcome) and how hard the pipeline may use it."""

    api_key: str = Field(description="Secret or restricted key: dg.EnvVar('STRIPE_API_KEY'), never a literal.")
    api_base: str | None = Field(default=None, description="API base address (STRIPE_API_BASE; Stripe's).")
    max_rps: float | None = Field(default=None, description="Global requests/s (FC_BALANCES_MAX_RPS).")
    max_rps_per_endpoint: float | None = Field(
        default=None, description="Requests/s per endpoint (FC_BALANCES_MAX_RPS_PER_ENDPOINT; 25)."
    )
    discovery: str | None = Field(default=None, description="per_customer or all (FC_BALANCES_DISCOVERY).")
    refresh_timeout_seconds: float | None = Field(
        default=None, description="How long a refresh may stay pending (FC_BALANCES_REFRESH_TIMEOUT; 600)."
    )
    event_grace_seconds: float | None = Field(
        default=None, description="Wait for an event before retrieving directly (FC_BALANCES_EVENT_GRACE; 20)."
    )
    poll_interval_seconds: float | None = Field(
        default=None, description="Seconds between reads of the events API (FC_BALANCES_POLL_INTERVAL; 1)."
    )

    # The refresh policy (issue 13); None: from FC_BALANCES_MAX_AGE_HOURS / _MAX_REFRESHES / _REFRESH_PRICE /
    # _CHECK_RESERVE_RPS when the run starts.
    max_age_hours: float | None = Field(default=None, description="Skip accounts with a newer balance (skipped_fresh).")
    max_refreshes: int | None = Field(default=None, description="Refresh requests per run at most (skipped_budget).")
    refresh_price: str | None = Field(default=None, description="Price of one refresh (decimal), for cost metadata.")
    check_reserve_rps: float | None = Field(default=None, description="Requests/s of each limit left to funds checks.")

    def resolved_api_base(self) -> str:
        return self.api_base or env_text("STRIPE_API_BASE") or STRIPE_API_BASE

    def client(self) -> StripeFCClient:
        return StripeFCClient(ClientSettings(
            api_key=self.api_key, api_base=self.resolved_api_base(),
            max_rps=_number(self.max_rps, "FC_BALANCES_MAX_RPS", None),
            max_rps_per_endpoint=_number(self.max_rps_per_endpoint, "FC_BALANCES_MAX_RPS_PER_ENDPOINT", None),
            reserve_rps=self.check_reserve_rps if self.check_reserve_rps is not None else check_reserve_rps(),
        ))

    def policy_settings(self) -> PolicySettings:
        env = policy_env()
        price = self.refresh_price if self.refresh_price is not None else env["refresh_price"]
        return PolicySettings(
            max_age_hours=self.max_age_hours if self.max_age_hours is not None else env["max_age_hours"],
            max_refreshes=self.max_refreshes if self.max_refreshes is not None else env["max_refreshes"],
            refresh_price=parse_price(price) if price else None,
        )

    def engine_settings(self) -> EngineSettings:
        discovery = self.discovery or env_choice("FC_BALANCES_DISCOVERY", "per_customer", ("per_customer", "all"))
        if discovery not in ("per_customer", "all"):
            raise ValueError(f"discovery must be per_customer or all, got {discovery!r}")
        return EngineSettings(
            discovery=discovery,  # type: ignore[arg-type]
            refresh_timeout=_number(self.refresh_timeout_seconds, "FC_BALANCES_REFRESH_TIMEOUT", 600.0) or 600.0,
            event_grace=_number(self.event_grace_seconds, "FC_BALANCES_EVENT_GRACE", 20.0) or 20.0,
            poll_interval=_number(self.poll_interval_seconds, "FC_BALANCES_POLL_INTERVAL", 1.0) or 1.0,
        )


# The first Dagster daily partition: fixed when the definitions load, before any setting is read.
EARLIEST_HISTORY_START = date(2024, 1, 1)


class WarehouseResource(dg.ConfigurableResource):
    """The folder holding fc_balances.duckdb and, unless iceberg_catalog says otherwise, the Iceberg catalog."""

    directory: str | None = Field(default=None, description="Warehouse folder (FC_BALANCES_WAREHOUSE; ./warehouse).")
    iceberg_catalog: str | None = Field(
        default=None, description=(
            "pyiceberg catalog properties as JSON (FC_BALANCES_ICEBERG_CATALOG; SQLite at "
            "<warehouse>/iceberg/catalog.db)."),
    )
    event_store: str | None = Field(
        default=None, description="The webhook event store file (FC_BALANCES_EVENT_STORE; <warehouse>/events/...)."
    )
    lock_timeout_seconds: float | None = Field(
        default=None, description="How long to wait for another writer (FC_BALANCES_LOCK_TIMEOUT; 60)."
    )
    batch_size: int | None = Field(default=None, description="Rows buffered before a write (FC_BALANCES_BATCH_SIZE).")
    flush_seconds: float = Field(default=5.0, description="Longest a row waits in the buffer before a write.")
    duckdb_memory_limit: str | None = Field(
        default=None, description="Memory limit of every DuckDB connection (FC_BALANCES_DUCKDB_MEMORY_LIMIT; 1GB)."
    )
    history_start: str | None = Field(
        default=None, description="First UTC day of the daily marts (FC_BALANCES_HISTORY_START; 2024-01-01)."
    )
    carry_forward_days: int | None = Field(
        default=None, description="Days a balance is carried after its observation (FC_BALANCES_CARRY_FORWARD_DAYS)."
    )
    event_retention_days: float | None = Field(
        default=None, description="Days applied events stay in the event store (FC_BALANCES_EVENT_RETENTION_DAYS; 35).",
    )

    def folder(self) -> str:
        return self.directory or warehouse_dir()

    def rows_per_batch(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return int(env_float("FC_BALANCES_BATCH_SIZE", 2000.0) or 2000)

    def retention_days(self) -> float:
        return _number(self.event_retention_days, "FC_BALANCES_EVENT_RETENTION_DAYS", 35.0) or 35.0

    def event_store_path(self) -> Path:
        """The event store's file: the field, else FC_BALANCES_EVENT_STORE, else under the warehouse folder."""
        from pipelines.events import event_store_path

        if self.event_store:
            return Path(self.event_store).expanduser().absolute()
        return event_store_path(self.folder())

    def catalog_setting(self) -> str | None:
        return self.iceberg_catalog or env_text("FC_BALANCES_ICEBERG_CATALOG")

    def memory_limit(self) -> str:
        return self.duckdb_memory_limit or env_text("FC_BALANCES_DUCKDB_MEMORY_LIMIT") or "1GB"

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection (UTC) for checks and other reads: no writer lock."""
        return open_reader(
            self.folder(), _number(self.lock_timeout_seconds, "FC_BALANCES_LOCK_TIMEOUT", 60.0) or 60.0,
            memory_limit=self.memory_limit(),
        )

    def open(self) -> Warehouse:
        """A warehouse handle for writing; use it as a context manager (it holds the single-writer lock)."""
        return Warehouse(
            self.folder(), catalog=self.catalog_setting(),
            lock_timeout=_number(self.lock_timeout_seconds, "FC_BALANCES_LOCK_TIMEOUT", 60.0) or 60.0,
            memory_limit=self.memory_limit(),
        )

    def history(self) -> HistorySettings:
        """The history settings, read when a run uses them: a bad value fails with one line naming it."""
        raw_start = self.history_start or env_text("FC_BALANCES_HISTORY_START") or "2024-01-01"
        try:
            start = date.fromisoformat(raw_start)
        except ValueError:
            raise SettingsError(
                f"FC_BALANCES_HISTORY_START must be a date like 2024-01-01, got {raw_start!r}"
            ) from None
        if start < EARLIEST_HISTORY_START:
            # The Dagster partitions start there (fixed when the definitions load, before settings exist).
            raise SettingsError(f"FC_BALANCES_HISTORY_START must be {EARLIEST_HISTORY_START} or later, got {start}")
        days = self.carry_forward_days
        if days is None:
            raw_days = env_text("FC_BALANCES_CARRY_FORWARD_DAYS") or "31"
            if not raw_days.isdigit():
                raise SettingsError(f"FC_BALANCES_CARRY_FORWARD_DAYS must be a whole number of days, got {raw_days!r}")
            days = int(raw_days)
        if days < 0:
            raise SettingsError(f"FC_BALANCES_CARRY_FORWARD_DAYS must be 0 or more, got {days}")
        return HistorySettings(history_start=start, carry_forward_days=days)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources a code location gets: everything from the environment, read when a run starts."""
    return {"stripe": StripeResource(api_key=dg.EnvVar("STRIPE_API_KEY")), "warehouse": WarehouseResource()}
