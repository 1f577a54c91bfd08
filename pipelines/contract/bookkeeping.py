"""The declarations of the pipeline's own tables: user-managed policy, bookkeeping and the data lifecycle."""

from __future__ import annotations

from pipelines.contract.columns import ACCOUNT_ID
from pipelines.contract.shapes import TS, Column, Table
from pipelines.contract.values import DELETION_STATUSES, SUBJECT_TYPES

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
        ACCOUNT_ID,
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

# The key of the publish's bookkeeping: a published table's partition.
PUBLISHED_TABLE = Column("table_name", "VARCHAR", "the published table", nullable=False)
PARTITION_KEY = Column("partition_key", "VARCHAR", "the partition value as Iceberg prints it ('' if none)",
                       nullable=False)

ICEBERG_PUBLISHED = Table(
    name="_fc_iceberg_partitions",
    description="Bookkeeping of the Iceberg publish: per table and partition, what its last commit held.",
    group="warehouse",
    key=("table_name", "partition_key"),
    exported=False,
    readme=False,
    columns=(
        PUBLISHED_TABLE,
        PARTITION_KEY,
        Column("row_count", "BIGINT", "rows in the partition", nullable=False),
        Column("fingerprint", "VARCHAR", "a hash of the partition's rows", nullable=False),
        Column("run_id", "VARCHAR", "the Dagster run (or command) whose publish committed it", nullable=False),
        Column("snapshot_id", "BIGINT", "the Iceberg snapshot that committed it"),
        Column("published_at", TS, "when the Iceberg commit was recorded", nullable=False),
    ),
)

ICEBERG_PENDING = Table(
    name="_fc_iceberg_pending",
    description=(
        "Bookkeeping of the Iceberg publish: partitions of a table whose rows a write updated in place since "
        "their last publish (an update leaves the row count as it was, which is all a publish reads of the "
        "partitions it has recorded); written in the write's transaction, cleared in the record's."
    ),
    group="warehouse",
    key=("table_name", "partition_key"),
    exported=False,
    readme=False,
    columns=(PUBLISHED_TABLE, PARTITION_KEY),
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
