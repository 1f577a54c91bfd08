"""Dagster resources: the Stripe client and the warehouse; unset fields are read from the environment per run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from pipelines.marts.build import HistorySettings
from pipelines.marts.health import health_settings
from pipelines.settings import EARLIEST_HISTORY_START, SETTINGS, parse_price
from pipelines.stripe_fc.client import ClientSettings, StripeFCClient
from pipelines.stripe_fc.engine import EngineSettings
from pipelines.stripe_fc.policy import PolicySettings
from pipelines.warehouse import Warehouse, open_reader

__all__ = ["EARLIEST_HISTORY_START", "StripeResource", "WarehouseResource", "default_resources"]

# A field left at None means "from this environment variable when the run starts, else the default" (declared
# once, in pipelines/settings.py). The environment is read inside the run, never at import, so `dagster dev` sees
# a changed setting on the next run. A field set to 0 means 0: only None falls back.


def _resolve(variable: str, given: Any = None) -> Any:
    return SETTINGS[variable].resolve(given)


def _from(variable: str) -> Any:
    """A resource field backed by a declared setting: None (read when the run starts), described from the setting."""
    setting = SETTINGS[variable]
    return Field(default=None, description=f"{setting.meaning} ({variable}; {setting.readme_default()}).")


class StripeResource(dg.ConfigurableResource):
    """A Stripe API key (restricted keys welcome) and how hard the pipeline may use it."""

    api_key: str = Field(description="Secret or restricted key: dg.EnvVar('STRIPE_API_KEY'), never a literal.")
    api_base: str | None = _from("STRIPE_API_BASE")
    max_rps: float | None = _from("FC_BALANCES_MAX_RPS")
    max_rps_per_endpoint: float | None = _from("FC_BALANCES_MAX_RPS_PER_ENDPOINT")
    discovery: str | None = _from("FC_BALANCES_DISCOVERY")
    refresh_timeout_seconds: float | None = _from("FC_BALANCES_REFRESH_TIMEOUT")
    event_grace_seconds: float | None = _from("FC_BALANCES_EVENT_GRACE")
    poll_interval_seconds: float | None = _from("FC_BALANCES_POLL_INTERVAL")

    # The refresh policy (issue 13).
    max_age_hours: float | None = _from("FC_BALANCES_MAX_AGE_HOURS")
    max_refreshes: int | None = _from("FC_BALANCES_MAX_REFRESHES")
    refresh_price: str | None = _from("FC_BALANCES_REFRESH_PRICE")
    check_reserve_rps: float | None = _from("FC_BALANCES_CHECK_RESERVE_RPS")

    def resolved_api_base(self) -> str:
        return str(_resolve("STRIPE_API_BASE", self.api_base))

    def client(self) -> StripeFCClient:
        return StripeFCClient(ClientSettings(
            api_key=self.api_key, api_base=self.resolved_api_base(),
            max_rps=_resolve("FC_BALANCES_MAX_RPS", self.max_rps),
            max_rps_per_endpoint=_resolve("FC_BALANCES_MAX_RPS_PER_ENDPOINT", self.max_rps_per_endpoint),
            reserve_rps=_resolve("FC_BALANCES_CHECK_RESERVE_RPS", self.check_reserve_rps),
        ))

    def policy_settings(self) -> PolicySettings:
        price = _resolve("FC_BALANCES_REFRESH_PRICE", self.refresh_price)
        return PolicySettings(
            max_age_hours=_resolve("FC_BALANCES_MAX_AGE_HOURS", self.max_age_hours),
            max_refreshes=_resolve("FC_BALANCES_MAX_REFRESHES", self.max_refreshes),
            refresh_price=parse_price(price) if price else None,
        )

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            discovery=_resolve("FC_BALANCES_DISCOVERY", self.discovery),
            refresh_timeout=_resolve("FC_BALANCES_REFRESH_TIMEOUT", self.refresh_timeout_seconds),
            event_grace=_resolve("FC_BALANCES_EVENT_GRACE", self.event_grace_seconds),
            poll_interval=_resolve("FC_BALANCES_POLL_INTERVAL", self.poll_interval_seconds),
        )

    def validate(self) -> None:
        """Every setting this resource gives a run, read now: a bad one fails with its line before any request."""
        self.resolved_api_base()
        for variable, given in (("FC_BALANCES_MAX_RPS", self.max_rps),
                                ("FC_BALANCES_MAX_RPS_PER_ENDPOINT", self.max_rps_per_endpoint),
                                ("FC_BALANCES_CHECK_RESERVE_RPS", self.check_reserve_rps)):
            _resolve(variable, given)
        self.policy_settings()
        self.engine_settings()


class WarehouseResource(dg.ConfigurableResource):
    """The folder holding fc_balances.duckdb and, unless iceberg_catalog says otherwise, the Iceberg catalog."""

    directory: str | None = _from("FC_BALANCES_WAREHOUSE")
    iceberg_catalog: str | None = _from("FC_BALANCES_ICEBERG_CATALOG")
    event_store: str | None = _from("FC_BALANCES_EVENT_STORE")
    lock_timeout_seconds: float | None = _from("FC_BALANCES_LOCK_TIMEOUT")
    batch_size: int | None = _from("FC_BALANCES_BATCH_SIZE")
    flush_seconds: float = Field(default=5.0, description="Longest a row waits in the buffer before a write.")
    duckdb_memory_limit: str | None = _from("FC_BALANCES_DUCKDB_MEMORY_LIMIT")
    history_start: str | None = _from("FC_BALANCES_HISTORY_START")
    carry_forward_days: int | None = _from("FC_BALANCES_CARRY_FORWARD_DAYS")
    event_retention_days: float | None = _from("FC_BALANCES_EVENT_RETENTION_DAYS")
    mart_shards: int | None = _from("FC_BALANCES_MART_SHARDS")
    # The warehouse the marts steps of one run share, open with its connection held (see `shared_connection`).
    _shared: tuple[ExitStack, Warehouse, duckdb.DuckDBPyConnection] | None = PrivateAttr(default=None)

    def folder(self) -> str:
        return str(_resolve("FC_BALANCES_WAREHOUSE", self.directory))

    def rows_per_batch(self) -> int:
        return int(_resolve("FC_BALANCES_BATCH_SIZE", self.batch_size))

    def retention_days(self) -> float:
        return float(_resolve("FC_BALANCES_EVENT_RETENTION_DAYS", self.event_retention_days))

    def event_store_path(self) -> Path:
        """The event store's file: the field, else FC_BALANCES_EVENT_STORE, else under the warehouse folder."""
        from pipelines.events import event_store_path

        explicit = _resolve("FC_BALANCES_EVENT_STORE", self.event_store)
        if explicit:
            return Path(explicit).expanduser().absolute()
        return event_store_path(self.folder())

    def catalog_setting(self) -> str | None:
        """pyiceberg catalog properties as JSON, or None for the embedded SQLite catalog."""
        return _resolve("FC_BALANCES_ICEBERG_CATALOG", self.iceberg_catalog)

    def memory_limit(self) -> str:
        return str(_resolve("FC_BALANCES_DUCKDB_MEMORY_LIMIT", self.duckdb_memory_limit))

    def lock_timeout(self) -> float:
        return float(_resolve("FC_BALANCES_LOCK_TIMEOUT", self.lock_timeout_seconds))

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection (UTC) for checks and other reads: no writer lock."""
        self.close_shared()  # its writer lock would keep this reader waiting
        return open_reader(self.folder(), self.lock_timeout(), memory_limit=self.memory_limit())

    def open(self, publishing: bool = True, keep_connected: bool = False) -> Warehouse:
        """A warehouse handle for writing; use it as a context manager (it holds the single-writer lock).
        `publishing` False: DuckDB only, the Iceberg catalog left closed (a read of what to rebuild);
        `keep_connected` True: the open's connection serves the first call (see Warehouse)."""
        self.close_shared()  # its writer lock would keep this open waiting
        return Warehouse(
            self.folder(), catalog=self.catalog_setting(), lock_timeout=self.lock_timeout(),
            memory_limit=self.memory_limit(), publishing=publishing, keep_connected=keep_connected,
        )

    @contextmanager
    def shared_connection(self) -> Iterator[tuple[Warehouse, duckdb.DuckDBPyConnection]]:
        """The open warehouse and a read-write connection for a mart's step, shared by the steps of one run in this
        process: the first opens them, the next reuse them, so a run's marts open, check and checkpoint the file
        and open the Iceberg catalog once instead of once each (a third of a marts run at 1,000 accounts). The
        run's end closes them (Dagster's teardown), as do a failure inside the block (the next step opens afresh)
        and any other open of this resource (it would wait for the writer lock they hold)."""
        if self._shared is None:
            stack = ExitStack()
            try:
                opened = stack.enter_context(self.open(keep_connected=True))
                self._shared = (stack, opened, stack.enter_context(opened.connection()))
            except BaseException:
                stack.close()
                raise
        stack, opened, connection = self._shared
        try:
            yield opened, connection
        except BaseException as exc:
            self._shared = None
            stack.__exit__(type(exc), exc, exc.__traceback__)  # told of the failure: no catalog error of its own
            raise

    def close_shared(self) -> None:
        """Close the warehouse the marts steps shared, if open: its connection (a checkpoint), then the lock."""
        if self._shared is not None:
            stack, _, _ = self._shared
            self._shared = None
            stack.close()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close_shared()

    def history(self) -> HistorySettings:
        """The history settings, read when a run uses them: a bad value fails with one line naming it."""
        return HistorySettings(
            history_start=_resolve("FC_BALANCES_HISTORY_START", self.history_start),
            carry_forward_days=_resolve("FC_BALANCES_CARRY_FORWARD_DAYS", self.carry_forward_days),
        )

    def shards(self) -> int:
        """How many account hash shards the partitioned marts are built in (one Dagster step each)."""
        return int(_resolve("FC_BALANCES_MART_SHARDS", self.mart_shards))

    def validate(self) -> None:
        """Every setting this resource gives a run, read now: a bad one fails with its line before any work."""
        for read in (self.folder, self.rows_per_batch, self.retention_days, self.event_store_path, self.memory_limit,
                     self.lock_timeout, self.catalog_setting, self.history, self.shards, health_settings):
            read()


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources a code location gets: everything from the environment, read when a run starts."""
    return {"stripe": StripeResource(api_key=dg.EnvVar("STRIPE_API_KEY")), "warehouse": WarehouseResource()}
