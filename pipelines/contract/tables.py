"""Every warehouse table declared once: columns, types, keys, partitions and owners (data only;
the closed value sets are in pipelines/contract/values.py).

DDL, Arrow schemas, Dagster column schemas, the contract check, the asset checks' keys and the README's table
sections are all generated from these declarations (see pipelines/contract/schema.py). A shape change is one edit here
plus one numbered migration under sql/migrations/.
"""

from __future__ import annotations

from pipelines.contract.bookkeeping import (
    FC_DELETIONS,
    FC_EVENT_GAPS,
    FC_REFRESH_PRIORITY,
    FC_SCHEMA_MIGRATIONS,
    ICEBERG_PENDING,
    ICEBERG_PUBLISHED,
    MART_PARTITIONS,
)
from pipelines.contract.columns import (
    ACCOUNT_ID,
    AMOUNTS,
    AS_OF,
    BALANCE_TYPE,
    BUILT_AT,
    CURRENCY,
    CUSTOMER_ID,
    nullable,
)
from pipelines.contract.partition import Partition
from pipelines.contract.shapes import AMOUNT, TS, Column, Table
from pipelines.contract.values import (
    BALANCE_TYPES,
    FAILED_REFRESH_OUTCOMES,
    FEATURE_WINDOWS,
    FUNDS_BASES,
    REFRESH_OUTCOMES,
    RELINK_REASONS,
)
from pipelines.settings import default

__all__ = ["AMOUNT", "TS", "Column", "Table"]  # the shapes, re-exported: declarations import them from here

# ------------------------------------------------------------------------------------------- contract tables

FC_ACCOUNTS = Table(
    name="fc_accounts",
    description="One row per Financial Connections account: its latest observed state.",
    group="stripe_fc",
    key=("account_id",),
    columns=(
        ACCOUNT_ID,
        CUSTOMER_ID,
        Column("account_holder_type", "VARCHAR", "customer or account"),
        Column("institution_name", "VARCHAR", "the bank or card issuer"),
        Column("display_name", "VARCHAR", "the account's name at the institution"),
        Column("last4", "VARCHAR", "last four digits of the account number"),
        Column("category", "VARCHAR", "cash, credit, investment or other"),
        Column("subcategory", "VARCHAR", "checking, savings, credit_card, line_of_credit, mortgage or other"),
        Column("status", "VARCHAR", "active, inactive or disconnected"),
        Column("permissions", "VARCHAR[]", "data the account holder granted (balances, ownership, ...)"),
        Column("livemode", "BOOLEAN", "live (true) or test (false) data"),
        Column("created_at", TS, "when the account was linked"),
        Column("balance_refresh_status", "VARCHAR", "pending, succeeded or failed (Stripe's last refresh)"),
        Column("balance_refresh_last_attempted_at", TS, "when Stripe last attempted a balance refresh"),
        Column("next_refresh_available_at", TS, "the earliest time Stripe accepts another refresh"),
        Column("observed_at", TS, "when the pipeline observed this state", nullable=False),
        Column(
            "access_stopped_at", TS,
            "while status is inactive or disconnected: the observed_at of the first observation in that state "
            "(an event's created time when an event told us); null while active",
        ),
        Column("expected_deactivation_at", TS,
               "status_details.active.expected_deactivation_date: when Stripe expects the connection to stop "
               "(relink before); null when Stripe says nothing"),
        Column("account_numbers_status", "VARCHAR",
               "the best account_numbers[].status of the account: transactable, pending, any value Stripe added, "
               "expired, deactivated (in that order); null when the account has no numbers"),
    ),
)

FC_BALANCES = Table(
    name="fc_balances",
    description=(
        "The balance history, one row per (account_id, as_of, currency): Stripe's sign (+ owed to the holder), "
        "minor units as BIGINT and exact DECIMAL(38,4) major units; a re-run never duplicates a row."
    ),
    group="stripe_fc",
    key=("account_id", "as_of", "currency"),
    partition=Partition("as_of", "day"),
    columns=(
        ACCOUNT_ID,
        CUSTOMER_ID,
        BALANCE_TYPE,
        CURRENCY,
        AS_OF,
        *AMOUNTS,
        Column("fetched_at", TS, "when the pipeline read it", nullable=False),
    ),
)

FC_BALANCE_REFRESHES = Table(
    name="fc_balance_refreshes",
    description="One row per account per run: what happened to its balance refresh.",
    group="stripe_fc",
    key=("run_id", "account_id"),
    partition=Partition("run_id"),
    columns=(
        Column("run_id", "VARCHAR", "the Dagster run id", nullable=False),
        ACCOUNT_ID,
        Column("outcome", "VARCHAR", "what happened: " + ", ".join(REFRESH_OUTCOMES), nullable=False,
               values=REFRESH_OUTCOMES),
        Column("requested_at", TS, "when we asked for the refresh (null if it was already pending or skipped)"),
        Column("completed_at", TS, "when the refresh finished (the refreshed_balance event's time)"),
        Column("status", "VARCHAR", "Stripe's balance_refresh.status at the end"),
        Column("next_refresh_available_at", TS, "the earliest time Stripe accepts another refresh"),
        Column("error_code", "VARCHAR", "Stripe's error code when the request failed"),
    ),
)

FC_REJECTED_BALANCES = Table(
    name="fc_rejected_balances",
    description=(
        "Balances that break the contract (a non-ISO currency, a non-integer or out-of-range amount, a bad as_of, "
        "an unknown balance type), kept with the reason and raw JSON and never in fc_balances."
    ),
    group="stripe_fc",
    partition=Partition("fetched_at", "day"),
    columns=(
        Column("account_id", "VARCHAR", "the account, when the payload names one"),
        Column("as_of", TS, "the balance's as_of, when readable"),
        Column("currency", "VARCHAR", "the offending or affected currency key"),
        Column("reason", "VARCHAR", "why the balance was rejected", nullable=False),
        Column("payload", "VARCHAR", "the raw balance as JSON text"),
        Column("fetched_at", TS, "when the pipeline read it", nullable=False),
    ),
)

FC_EVENTS = Table(
    name="fc_events",
    description=(
        "Financial Connections events received by webhook or the events API, or recorded by a funds check's "
        "refresh (ids evt_fcbcheck...), one row per event id."
    ),
    group="events",
    key=("event_id",),
    partition=Partition("created", "day"),
    columns=(
        Column("event_id", "VARCHAR", "Stripe's evt_ id; one row per event however often it was delivered",
               nullable=False),
        Column("type", "VARCHAR", "the event type, e.g. financial_connections.account.refreshed_balance",
               nullable=False),
        Column("created", TS, "when Stripe created the event", nullable=False),
        Column("account_id", "VARCHAR", "the fca_ id of the account in data.object"),
        Column("received_at", TS, "when a webhook delivery, the events sensor or a funds check first stored it",
               nullable=False),
        Column("payload", "VARCHAR", "the whole event as JSON text (no personal data beyond holder ids)",
               nullable=False),
    ),
)

# ------------------------------------------------------------------------------------------- marts

_MART_ACCOUNT_KEY = (nullable(ACCOUNT_ID), CUSTOMER_ID, nullable(CURRENCY))

FC_LATEST_BALANCES = Table(
    name="fc_latest_balances",
    description=(
        "Per (account_id, currency) the newest fc_balances row, with the account's status, category and "
        "institution, and staleness_hours from as_of to the build time; updated from the balances fetched "
        "since its last build."
    ),
    group="marts",
    key=("account_id", "currency"),
    enforce_key=False,
    columns=(
        *_MART_ACCOUNT_KEY,
        Column("balance_type", "VARCHAR", "cash or credit, from the row", values=BALANCE_TYPES),
        nullable(AS_OF),
        *AMOUNTS,
        Column("fetched_at", TS, "when the pipeline read it"),
        Column("account_status", "VARCHAR", "active, inactive or disconnected (fc_accounts.status)"),
        Column("category", "VARCHAR", "fc_accounts.category"),
        Column("subcategory", "VARCHAR", "fc_accounts.subcategory"),
        Column("institution_name", "VARCHAR", "fc_accounts.institution_name"),
        Column("display_name", "VARCHAR", "fc_accounts.display_name"),
        Column("last4", "VARCHAR", "fc_accounts.last4"),
        Column("staleness_hours", "DOUBLE", "hours from as_of to built_at"),
        BUILT_AT,
    ),
)

FC_DAILY_BALANCES = Table(
    name="fc_daily_balances",
    description=(
        "Daily partitions (UTC). Per (account_id, currency, day): the values of the last row with as_of on or "
        "before the end of that UTC day, carried forward over days without rows for at most "
        f"FC_BALANCES_CARRY_FORWARD_DAYS ({default('FC_BALANCES_CARRY_FORWARD_DAYS')}) days after the last "
        "observation, then no row until the next one; "
        "observed says whether the day had a row of its own. A day is built from the previous day's partition "
        "and that day's balances."
    ),
    group="marts",
    key=("account_id", "currency", "day"),
    enforce_key=False,
    partition=Partition("day"),
    columns=(
        *_MART_ACCOUNT_KEY,
        Column("day", "DATE", "UTC calendar day"),
        Column("balance_type", "VARCHAR", "cash or credit, from the carried row", values=BALANCE_TYPES),
        Column("observed", "BOOLEAN", "the day had a row of its own (false: carried forward)"),
        Column("as_of", TS, "as_of of the carried row"),
        *AMOUNTS,
        BUILT_AT,
    ),
)

FC_UNDERWRITING_FEATURES = Table(
    name="fc_underwriting_features",
    description=(
        "Daily partitions by window_end, point in time. Per (account_id, currency, window_days), windows of "
        f"{FEATURE_WINDOWS[0]} and {FEATURE_WINDOWS[1]} days ending on window_end: statistics of the daily current "
        "balance over the window's days that have a value (null, with days_with_value 0, when none), negative days "
        "and streaks for cash accounts, and the newest balance as of the end of window_end (as of the build for "
        f"today). Bounded: a key has rows for a window_end only while its {FEATURE_WINDOWS[1]}-day window holds a "
        f"daily value, at most FC_BALANCES_CARRY_FORWARD_DAYS + {FEATURE_WINDOWS[1] - 1} days after its last "
        "balance, and again from the day it is observed again (its latest balance stays in fc_latest_balances). "
        "The view fc_current_underwriting_features holds the newest window_end."
    ),
    group="marts",
    key=("account_id", "currency", "window_end", "window_days"),
    enforce_key=False,
    partition=Partition("window_end"),
    columns=(
        *_MART_ACCOUNT_KEY,
        Column("balance_type", "VARCHAR", "cash or credit, from the newest row as of window_end",
               values=BALANCE_TYPES),
        Column("window_days", "INTEGER", f"{FEATURE_WINDOWS[0]} or {FEATURE_WINDOWS[1]}"),
        Column("window_start", "DATE", "first day of the window (window_end - window_days + 1)"),
        Column("window_end", "DATE", "the window's last UTC day, included; the partition"),
        Column("days_with_value", "BIGINT", "days of the window with a daily current_minor"),
        Column("days_observed", "BIGINT", "days of the window with a row of their own"),
        Column("coverage", "DOUBLE", "days_with_value / window_days"),
        Column("avg_daily_balance_minor", "DOUBLE", "mean of daily current_minor"),
        Column("min_daily_balance_minor", "BIGINT", "minimum of daily current_minor"),
        Column("max_daily_balance_minor", "BIGINT", "maximum of daily current_minor"),
        Column("p10_daily_balance_minor", "DOUBLE", "10th percentile, linear interpolation (quantile_cont)"),
        Column("p90_daily_balance_minor", "DOUBLE", "90th percentile, linear interpolation (quantile_cont)"),
        Column("stddev_daily_balance_minor", "DOUBLE", "population standard deviation of daily current_minor"),
        Column("days_negative", "BIGINT", "cash: days with daily current_minor < 0; null for credit"),
        Column("longest_negative_streak", "BIGINT", "cash: most consecutive days below 0; null for credit"),
        Column("latest_current_minor", "BIGINT", "current_minor of the newest row as of the end of window_end"),
        Column("latest_available_minor", "BIGINT", "available_minor of that row"),
        Column("latest_as_of", TS, "as_of of that row"),
        Column("staleness_hours", "DOUBLE", "hours from latest_as_of to the end of window_end (built_at for today)"),
        BUILT_AT,
    ),
)

FC_CUSTOMER_LIQUIDITY = Table(
    name="fc_customer_liquidity",
    description=(
        "Per (customer_id, currency) over the customer's active accounts: the sum of the latest cash available "
        "balances (current where available is missing, counted apart) and of the latest credit current balances."
    ),
    group="marts",
    key=("customer_id", "currency"),
    enforce_key=False,
    columns=(
        Column("customer_id", "VARCHAR", "the customer (accounts of other holder types are left out)"),
        Column("currency", "VARCHAR", "lowercase ISO 4217 code"),
        Column("accounts", "BIGINT", "active accounts with a balance in this currency"),
        Column("cash_accounts", "BIGINT", "of which cash"),
        Column("cash_available_minor", "BIGINT", "sum of latest cash available_minor, current_minor where null"),
        Column("cash_available", AMOUNT, "the same in major units, exact"),
        Column("cash_accounts_current_fallback", "BIGINT", "cash accounts counted with current (no available)"),
        Column("credit_accounts", "BIGINT", "of which credit"),
        Column("credit_current_minor", "BIGINT", "sum of latest credit current_minor (usually negative: owed)"),
        Column("credit_current", AMOUNT, "the same in major units, exact"),
        Column("oldest_as_of", TS, "the oldest as_of among the summed balances"),
        Column("newest_as_of", TS, "the newest as_of among the summed balances"),
        Column("max_staleness_hours", "DOUBLE", "hours from oldest_as_of to built_at"),
        BUILT_AT,
    ),
)

# ------------------------------------------------------------------------------------------- funds

FC_FUNDS_DECISIONS = Table(
    name="fc_funds_decisions",
    description=(
        "Every answer of the funds service (`fc-balances serve`), one row per decision id: what was asked, the "
        "decision, the balance it used and whether it was refreshed for it; stored durably before it was answered "
        "and landed here by the fc_events job."
    ),
    group="funds",
    key=("id",),
    columns=(
        Column("id", "VARCHAR", "the decision's id (fchk_...), as the service answered it", nullable=False),
        Column("created", TS, "when the decision was made and stored, before it was answered", nullable=False),
        ACCOUNT_ID,
        Column("customer_id", "VARCHAR", "account_holder.customer when known at the decision"),
        Column("amount_minor", "BIGINT", "the debit asked about, in minor units", nullable=False),
        Column("currency", "VARCHAR", "lowercase ISO 4217 code of the debit", nullable=False),
        Column("sufficient", "BOOLEAN", "the decision: true, false, or null when no balance could judge it"),
        Column("basis", "VARCHAR", "available, current_fallback or no_balance", nullable=False, values=FUNDS_BASES),
        Column("balance_minor", "BIGINT", "the balance the decision used, in minor units"),
        Column("as_of", TS, "when the institution computed that balance"),
        Column("staleness_hours", "DOUBLE", "hours from as_of to the decision"),
        Column("refreshed", "BOOLEAN", "the balance came from a refresh made for this check", nullable=False),
        Column("refresh_outcome", "VARCHAR", "not_needed, succeeded, failed, timed_out, skipped_* or error",
               nullable=False),
        Column("max_age_seconds", "DOUBLE", "the newest balance age the caller accepted without a refresh",
               nullable=False),
    ),
)

# ------------------------------------------------------------------------------------------- health

FC_ACCOUNT_HEALTH = Table(
    name="fc_account_health",
    description=(
        "Per account, as of the build: whether it still gives data and can be debited, and if not why the customer "
        "should relink it (relink_reason, the first that applies of " + ", ".join(RELINK_REASONS) + ", null when "
        "healthy). Rebuilt whole from fc_accounts, fc_balance_refreshes and fc_balances."
    ),
    group="marts",
    key=("account_id",),
    enforce_key=False,
    columns=(
        nullable(ACCOUNT_ID),
        CUSTOMER_ID,
        Column("status", "VARCHAR", "fc_accounts.status (active, inactive, disconnected or a value Stripe added)"),
        Column("access_stopped_at", TS, "fc_accounts.access_stopped_at"),
        Column("expected_deactivation_at", TS, "fc_accounts.expected_deactivation_at"),
        Column("account_numbers_status", "VARCHAR", "fc_accounts.account_numbers_status"),
        Column("last_successful_refresh_at", TS, "the newest succeeded balance refresh (a run's or Stripe's latest)"),
        Column("consecutive_failed_refreshes", "BIGINT",
               "runs since then whose refresh " + " or ".join(FAILED_REFRESH_OUTCOMES) + " (skips do not count)"),
        Column("days_with_balance_30d", "BIGINT", "UTC days of the 30 ending on the build day with a balance as_of"),
        Column("relink_reason", "VARCHAR", "why to ask the customer to relink; null when healthy",
               values=RELINK_REASONS),
        BUILT_AT,
    ),
)

# ------------------------------------------------------------------------------------------- the registry

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        FC_ACCOUNTS, FC_BALANCES, FC_BALANCE_REFRESHES, FC_REJECTED_BALANCES, FC_EVENTS,
        FC_LATEST_BALANCES, FC_DAILY_BALANCES, FC_UNDERWRITING_FEATURES, FC_CUSTOMER_LIQUIDITY, FC_ACCOUNT_HEALTH,
        FC_REFRESH_PRIORITY, FC_SCHEMA_MIGRATIONS, ICEBERG_PUBLISHED, ICEBERG_PENDING, MART_PARTITIONS, FC_DELETIONS,
        FC_EVENT_GAPS, FC_FUNDS_DECISIONS,
    )
}

EXPORTED_TABLES: tuple[str, ...] = tuple(name for name, table in TABLES.items() if table.exported)

# The tables the ingest writes, in the order a batch writes them.
INGEST_TABLES: tuple[str, ...] = tuple(name for name, table in TABLES.items() if table.group == "stripe_fc")
