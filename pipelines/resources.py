"""Dagster resources: the Stripe client and the warehouse, configured from the environment (secrets via EnvVar)."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from pipelines.policy_env import DEFAULT_CHECK_RESERVE_RPS, policy_env
from pipelines.settings import env_choice, env_float, warehouse_dir
from pipelines.stripe_fc.client import STRIPE_API_BASE, ClientSettings, StripeFCClient
from pipelines.stripe_fc.engine import EngineSettings
from pipelines.stripe_fc.policy import PolicySettings, parse_price
from pipelines.warehouse import Warehouse


class StripeResource(dg.ConfigurableResource):
    """A Stripe API key (restricted keys welcome) and how hard the pipeline may use it."""

    api_key: str = Field(description="Secret or restricted key; set from the STRIPE_API_KEY environment variable.")
    api_base: str = Field(default=STRIPE_API_BASE, description="API base address (a sandbox address for local runs).")
    max_rps: float | None = Field(default=None, description="Global requests/s; default Stripe's limit for the mode.")
    max_rps_per_endpoint: float | None = Field(default=None, description="Requests/s per endpoint; default 25.")
    discovery: str = Field(default="per_customer", description="`per_customer` or `all` (list every account).")
    refresh_timeout_seconds: float = Field(default=600.0, description="How long a refresh may stay pending.")
    event_grace_seconds: float = Field(default=20.0, description="Wait for an event before retrieving directly.")
    poll_interval_seconds: float = Field(default=1.0, description="Seconds between reads of the events API.")
    max_age_hours: float | None = Field(default=None, description="Skip accounts with a newer balance (skipped_fresh).")
    max_refreshes: int | None = Field(default=None, description="Refresh requests per run at most (skipped_budget).")
    refresh_price: str | None = Field(default=None, description="Price of one refresh (decimal), for cost metadata.")
    check_reserve_rps: float = Field(default=DEFAULT_CHECK_RESERVE_RPS,
                                     description="Requests/s of each limit left to funds checks.")

    def client(self) -> StripeFCClient:
        return StripeFCClient(ClientSettings(
            api_key=self.api_key, api_base=self.api_base,
            max_rps=self.max_rps, max_rps_per_endpoint=self.max_rps_per_endpoint,
            reserve_rps=self.check_reserve_rps,
        ))

    def policy_settings(self) -> PolicySettings:
        return PolicySettings(
            max_age_hours=self.max_age_hours, max_refreshes=self.max_refreshes,
            refresh_price=parse_price(self.refresh_price) if self.refresh_price else None,
        )

    def engine_settings(self) -> EngineSettings:
        if self.discovery not in ("per_customer", "all"):
            raise ValueError(f"discovery must be per_customer or all, got {self.discovery!r}")
        return EngineSettings(
            discovery=self.discovery,  # type: ignore[arg-type]
            refresh_timeout=self.refresh_timeout_seconds,
            event_grace=self.event_grace_seconds,
            poll_interval=self.poll_interval_seconds,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The folder holding fc_balances.duckdb and, unless parquet_uri says otherwise, parquet/."""

    directory: str = Field(default="warehouse", description="Set from FC_BALANCES_WAREHOUSE.")
    parquet_uri: str | None = Field(
        default=None, description="A folder or s3://bucket/prefix (FC_BALANCES_PARQUET_URI)."
    )
    lock_timeout_seconds: float = Field(default=60.0, description="How long to wait for another writer.")
    batch_size: int = Field(default=2000, description="Rows buffered before a write (FC_BALANCES_BATCH_SIZE).")
    flush_seconds: float = Field(default=5.0, description="Longest a row waits in the buffer before a write.")

    def open(self) -> Warehouse:
        """A warehouse handle; use it as a context manager (it holds the single-writer lock)."""
        return Warehouse(self.directory, parquet_uri=self.parquet_uri, lock_timeout=self.lock_timeout_seconds)


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources as the environment configures them; read when the code location loads."""
    return {
        "stripe": StripeResource(
            api_key=dg.EnvVar("STRIPE_API_KEY"),
            api_base=os.environ.get("STRIPE_API_BASE", "").strip() or STRIPE_API_BASE,
            max_rps=env_float("FC_BALANCES_MAX_RPS", None),
            max_rps_per_endpoint=env_float("FC_BALANCES_MAX_RPS_PER_ENDPOINT", None),
            discovery=env_choice("FC_BALANCES_DISCOVERY", "per_customer", ("per_customer", "all")),
            refresh_timeout_seconds=env_float("FC_BALANCES_REFRESH_TIMEOUT", 600.0) or 600.0,
            event_grace_seconds=env_float("FC_BALANCES_EVENT_GRACE", 20.0) or 20.0,
            poll_interval_seconds=env_float("FC_BALANCES_POLL_INTERVAL", 1.0) or 1.0,
            **policy_env(),
        ),
        "warehouse": WarehouseResource(
            directory=warehouse_dir(),
            parquet_uri=os.environ.get("FC_BALANCES_PARQUET_URI", "").strip() or None,
            lock_timeout_seconds=env_float("FC_BALANCES_LOCK_TIMEOUT", 60.0) or 60.0,
            batch_size=int(env_float("FC_BALANCES_BATCH_SIZE", 2000.0) or 2000),
        ),
    }
