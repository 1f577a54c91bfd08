"""Every warehouse table declared once: columns, types, keys, partitions, owners and closed value sets (data only).

DDL, Arrow schemas, Dagster column schemas, the contract check, the asset checks' keys and the README's table
sections are all generated from these declarations (see pipelines/contract/schema.py). A shape change is one edit here
plus one numbered migration under sql/migrations/.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contract.partition import Partition

# ------------------------------------------------------------------------------------------- closed value sets

REFRESH_OUTCOMES: tuple[str, ...] = (
    "succeeded", "failed", "timed_out", "skipped_cooldown", "skipped_inactive", "skipped_no_permission", "error",
    "skipped_fresh", "skipped_budget",
)
BALANCE_TYPES: tuple[str, ...] = ("cash", "credit")
ACCOUNT_STATUSES: tuple[str, ...] = ("active", "inactive", "disconnected")
SUBJECT_TYPES: tuple[str, ...] = ("customer", "account")
DELETION_STATUSES: tuple[str, ...] = ("pending", "deleted", "done")

# ------------------------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type as information_schema spells it, and what it means in one line."""

    name: str
    type: str
    description: str
    nullable: bool = True
    values: tuple[str, ...] | None = None  # a closed value set the column must stay within


@dataclass(frozen=True)
class Table:
    """One table of the warehouse."""

    name: str
    description: str
    group: str  # who owns and writes it: stripe_fc (ingest), events, marts, warehouse (bookkeeping), policy (users)
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique per row; enforced as PRIMARY KEY where `enforce_key`
    enforce_key: bool = True
    partition: Partition | None = None  # the Iceberg partition of an exported table; None: unpartitioned
    exported: bool = True  # published as an Iceberg table
    readme: bool = True  # documented in the README's tables section

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


TS = "TIMESTAMP WITH TIME ZONE"
AMOUNT = "DECIMAL(38,4)"

# ------------------------------------------------------------------------------------------- shared columns

_ACCOUNT_ID = Column("account_id", "VARCHAR", "Financial Connections account id (fca_...)", nullable=False)
_CUSTOMER_ID = Column("customer_id", "VARCHAR", "account_holder.customer (null for other holder types)")
_CURRENCY = Column("currency", "VARCHAR", "lowercase ISO 4217 code, as Stripe sends it", nullable=False)
_AS_OF = Column("as_of", TS, "when the institution computed the balance", nullable=False)
_BALANCE_TYPE = Column("balance_type", "VARCHAR", "cash or credit", nullable=False, values=BALANCE_TYPES)
_AMOUNTS = (
    Column("current_minor", "BIGINT", "current balance in minor units, Stripe's sign (+ owed to the holder)"),
    Column("available_minor", "BIGINT", "cash.available in minor units (cash only; null when not given)"),
    Column("used_minor", "BIGINT", "credit.used in minor units (credit only)"),
    Column("current", AMOUNT, "current_minor / 10^exponent (ISO 4217 as Stripe applies it), exact"),
    Column("available", AMOUNT, "available_minor / 10^exponent, exact"),
    Column("used", AMOUNT, "used_minor / 10^exponent, exact"),
)
_BUILT_AT = Column("built_at", TS, "the build time the mart was computed for (its step's start)")


def _nullable(column: Column) -> Column:
    """The same column where marts may leave it null (they are built by SQL, not constrained)."""
    return Column(column.name, column.type, column.description, nullable=True, values=column.values)


# ------------------------------------------------------------------------------------------- contract tables

FC_ACCOUNTS = Table(
    name="fc_accounts",
    description="One row per Financial Connections account: its latest observed state.",
    group="stripe_fc",
    key=("account_id",),
    columns=(
        _ACCOUNT_ID,
        _CUSTOMER_ID,
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
        _ACCOUNT_ID,
        _CUSTOMER_ID,
        _BALANCE_TYPE,
        _CURRENCY,
        _AS_OF,
        *_AMOUNTS,
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
        _ACCOUNT_ID,
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

_MART_ACCOUNT_KEY = (_nullable(_ACCOUNT_ID), _CUSTOMER_ID, _nullable(_CURRENCY))

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
        _nullable(_AS_OF),
        *_AMOUNTS,
        Column("fetched_at", TS, "when the pipeline read it"),
        Column("account_status", "VARCHAR", "active, inactive or disconnected (fc_accounts.status)"),
        Column("category", "VARCHAR", "fc_accounts.category"),
        Column("subcategory", "VARCHAR", "fc_accounts.subcategory"),
        Column("institution_name", "VARCHAR", "fc_accounts.institution_name"),
        Column("display_name", "VARCHAR", "fc_accounts.display_name"),
        Column("last4", "VARCHAR", "fc_accounts.last4"),
        Column("staleness_hours", "DOUBLE", "hours from as_of to built_at"),
        _BUILT_AT,
    ),
)

FC_DAILY_BALANCES = Table(
    name="fc_daily_balances",
    description=(
        "Daily partitions (UTC). Per (account_id, currency, day): the values of the last row with as_of on or "
        "before the end of that UTC day, carried forward over days without rows for at most "
        "FC_BALANCES_CARRY_FORWARD_DAYS (31) days after the last observation, then no row until the next one; "
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
        *_AMOUNTS,
        _BUILT_AT,
    ),
)

FC_UNDERWRITING_FEATURES = Table(
    name="fc_underwriting_features",
    description=(
        "Daily partitions by window_end, point in time. Per (account_id, currency, window_days) for every key "
        "with a balance on or before window_end, windows of 30 and 90 days ending on window_end: statistics of "
        "the daily current balance over the window's days that have a value (null, with days_with_value 0, when "
        "none), negative days and streaks for cash accounts, and the newest balance as of the end of window_end "
        "(as of the build for today). The view fc_current_underwriting_features holds the newest window_end."
    ),
    group="marts",
    key=("account_id", "currency", "window_end", "window_days"),
    enforce_key=False,
    partition=Partition("window_end"),
    columns=(
        *_MART_ACCOUNT_KEY,
        Column("balance_type", "VARCHAR", "cash or credit, from the newest row as of window_end",
               values=BALANCE_TYPES),
        Column("window_days", "INTEGER", "30 or 90"),
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
        _BUILT_AT,
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
        _BUILT_AT,
    ),
)

# ------------------------------------------------------------------------------------------- policy

FC_REFRESH_PRIORITY = Table(
    name="fc_refresh_priority",
    description=(
        "User-managed: accounts to refresh first when FC_BALANCES_MAX_REFRESHES binds, higher priority first; "
        "a row past its expires_at is ignored. The pipeline only reads it."
    ),
    group="policy",
    key=("account_id",),
    exported=False,
    columns=(
        _ACCOUNT_ID,
        Column("priority", "INTEGER", "higher is refreshed first", nullable=False),
        Column("reason", "VARCHAR", "why, for the people who manage the table"),
        Column("expires_at", TS, "when the row stops counting (null: never)"),
    ),
)

# ------------------------------------------------------------------------------------------- bookkeeping

FC_SCHEMA_MIGRATIONS = Table(
    name="fc_schema_migrations",
    description="The warehouse's schema version: one row per migration applied (version 1 is release 0.1.0).",
    group="warehouse",
    key=("version",),
    exported=False,
    columns=(
        Column("version", "INTEGER", "the migration's number (sql/migrations/NNNN_name.sql)", nullable=False),
        Column("name", "VARCHAR", "the migration's name", nullable=False),
        Column("applied_at", TS, "when it was applied to this warehouse", nullable=False),
    ),
)

MART_PARTITIONS = Table(
    name="_fc_mart_partitions",
    description=(
        "Bookkeeping of the marts: when each partition was built (against each day's newest fetched_at, this "
        "says which days are out of date) and each mart's watermark (partition_day null)."
    ),
    group="warehouse",
    exported=False,
    readme=False,
    columns=(
        Column("mart", "VARCHAR", "the mart", nullable=False),
        Column("partition_day", "DATE", "the partition's UTC day; null: the mart's watermark or unpartitioned build"),
        Column("built_at", TS, "when it was built (the watermark: the start of the last run that left every "
               "day up to its day up to date)", nullable=False),
        Column("row_count", "BIGINT", "rows the partition held when built", nullable=False),
    ),
)

ICEBERG_PUBLISHED = Table(
    name="_fc_iceberg_partitions",
    description="Bookkeeping of the Iceberg publish: per table and partition, what its last commit held.",
    group="warehouse",
    key=("table_name", "partition_key"),
    exported=False,
    readme=False,
    columns=(
        Column("table_name", "VARCHAR", "the published table", nullable=False),
        Column("partition_key", "VARCHAR", "the partition value as Iceberg prints it ('' if none)", nullable=False),
        Column("row_count", "BIGINT", "rows in the partition", nullable=False),
        Column("fingerprint", "VARCHAR", "a hash of the partition's rows", nullable=False),
        Column("run_id", "VARCHAR", "the Dagster run (or command) whose publish committed it", nullable=False),
        Column("snapshot_id", "BIGINT", "the Iceberg snapshot that committed it"),
        Column("published_at", TS, "when the Iceberg commit was recorded", nullable=False),
    ),
)

# ------------------------------------------------------------------------------------------- lifecycle

FC_DELETIONS = Table(
    name="fc_deletions",
    description=(
        "The audit of deletion requests (`fc-balances forget`): one row per request, holding a salted SHA-256 "
        "of the subject id, never the id itself."
    ),
    group="lifecycle",
    key=("request_id",),
    exported=False,
    columns=(
        Column("request_id", "VARCHAR", "the request's id (del_...)", nullable=False),
        Column("requested_at", TS, "when the request was recorded", nullable=False),
        Column("subject_type", "VARCHAR", "customer or account", nullable=False, values=SUBJECT_TYPES),
        Column("subject_hash", "VARCHAR", "hex SHA-256 of the warehouse's salt followed by the subject id",
               nullable=False),
        Column("status", "VARCHAR", "pending (recorded), deleted (DuckDB rows gone), done (Iceberg files erased too)",
               nullable=False, values=DELETION_STATUSES),
        Column("rows_removed", "VARCHAR", "JSON object: table (or event_store) -> rows removed"),
        Column("completed_at", TS, "when the deletion was done everywhere"),
    ),
)

FC_EVENT_GAPS = Table(
    name="fc_event_gaps",
    description=(
        "Outages longer than Stripe keeps events (30 days): the events cursor named an event that no longer "
        "exists, so the tracked accounts were retrieved and landed instead."
    ),
    group="lifecycle",
    exported=False,
    columns=(
        Column("gap_from", TS, "created time of the last event read before the gap (null when unknown)"),
        Column("gap_to", TS, "when the gap was detected: events from gap_from to here may be lost", nullable=False),
        Column("detected_at", TS, "when the gap was reconciled into the warehouse", nullable=False),
        Column("detected_by", "VARCHAR", "events_sensor or ingest", nullable=False),
        Column("accounts_reconciled", "BIGINT", "tracked accounts retrieved and landed", nullable=False),
        Column("balances_landed", "BIGINT", "fc_balances rows the reconciliation added", nullable=False),
    ),
)

# ------------------------------------------------------------------------------------------- the registry

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        FC_ACCOUNTS, FC_BALANCES, FC_BALANCE_REFRESHES, FC_REJECTED_BALANCES, FC_EVENTS,
        FC_LATEST_BALANCES, FC_DAILY_BALANCES, FC_UNDERWRITING_FEATURES, FC_CUSTOMER_LIQUIDITY,
        FC_REFRESH_PRIORITY, FC_SCHEMA_MIGRATIONS, ICEBERG_PUBLISHED, MART_PARTITIONS, FC_DELETIONS, FC_EVENT_GAPS,
    )
}

EXPORTED_TABLES: tuple[str, ...] = tuple(name for name, table in TABLES.items() if table.exported)

# The tables the ingest writes, in the order a batch writes them.
INGEST_TABLES: tuple[str, ...] = tuple(name for name, table in TABLES.items() if table.group == "stripe_fc")
