"""One account hash shard of a partitioned mart's days, built away from the warehouse: its inputs read from the Iceberg
tables into an in-memory DuckDB, the mart's own build (build_partitions) run there, its rows staged as Parquet.

No writer lock, no DuckDB file: shards run side by side in processes of their own; shard_commit.py loads their files
into the warehouse and publishes them in one step.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow.parquet as pq

from pipelines.contract.schema import create_table_sql
from pipelines.contract.tables import TABLES
from pipelines.marts.build import PARTITION_COLUMNS, HistorySettings, MartBuildError, build_partitions
from pipelines.marts.specs import MART_SPECS, utc
from pipelines.sql import load_sql

if TYPE_CHECKING:  # pyiceberg is imported by the shard steps only: the code location loads without it
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression

STAGING_DIR_NAME = ".mart_shards"  # <warehouse>/.mart_shards/<run id>/: the shards' files until the commit
_READ_BATCH_ROWS = 64 * 1024


@dataclass(frozen=True)
class Read:
    """Days of one input table a shard reads (by its partition column; `first` None: everything up to `last`)."""

    table: str
    first: date | None
    last: date


@dataclass(frozen=True)
class ShardTask:
    """What the plan step decided for every shard of one run of one mart (JSON-able, passed between steps)."""

    table: str
    first: str  # ISO days of the run's range
    last: str
    build_at: str  # ISO time, the one build time of the run
    history_start: str
    carry_forward_days: int
    count: int  # shards
    keys: int  # the warehouse's key count, which sizes the hash buckets as the single build does
    previous_built: bool  # the mart's day before `first` was built (else the build seeds from fc_balances)
    snapshots: dict[str, int | None]  # the Iceberg snapshot each input is read at (one view for every shard)
    staging: str  # the run's staging folder

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def days(self) -> tuple[date, date]:
        return date.fromisoformat(self.first), date.fromisoformat(self.last)

    @property
    def settings(self) -> HistorySettings:
        return HistorySettings(date.fromisoformat(self.history_start), self.carry_forward_days)


def seeds(first: date, settings: HistorySettings, previous_built: bool) -> bool:
    """Whether the range's first day is seeded from fc_balances, as build_partitions decides it."""
    return first <= settings.history_start or not previous_built


def shard_reads(table: str, first: date, last: date, settings: HistorySettings, previous_built: bool) -> list[Read]:
    """The inputs each partitioned mart's SQL reads for the days first..last (see the headers of
    sql/marts/fc_daily_balances.sql, fc_underwriting_features.sql, features_previous.sql, features_series.sql)."""
    seed = seeds(first, settings, previous_built)
    own_previous = [] if seed else [Read(table, first - timedelta(days=1), first - timedelta(days=1))]
    if table == "fc_daily_balances":  # the range's balances and the $carry_days before it
        return [Read("fc_balances", first - timedelta(days=settings.carry_forward_days), last), *own_previous]
    if table == "fc_underwriting_features":  # the windows' daily rows; a seed's newest balances
        lookback = MART_SPECS[table].lookback_days
        reads = [Read("fc_daily_balances", first - timedelta(days=lookback), last), *own_previous]
        return reads + ([Read("fc_balances", None, last)] if seed else [])
    raise MartBuildError(f"{table} cannot be built in shards; partitioned: {', '.join(PARTITION_COLUMNS)}")


def _row_filter(read: Read) -> BooleanExpression:
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan, LessThanOrEqual

    partition = TABLES[read.table].partition
    assert partition is not None
    column = partition.column
    if partition.transform == "day":  # a timestamp column partitioned by its UTC day
        upper: BooleanExpression = LessThan(column, utc(read.last + timedelta(days=1)).isoformat())
        return upper if read.first is None else And(GreaterThanOrEqual(column, utc(read.first).isoformat()), upper)
    upper = LessThanOrEqual(column, read.last.isoformat())
    return upper if read.first is None else And(GreaterThanOrEqual(column, read.first.isoformat()), upper)


def _connect(memory_limit: str, spill: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one shard, in UTC, bounded: past memory_limit it spills to a folder of its own (two
    processes sharing one spill folder would share file names)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = ?", [memory_limit])
    con.execute("SET temp_directory = ?", [str(spill)])
    con.execute("SET preserve_insertion_order = false")
    return con


def _create_tables(con: duckdb.DuckDBPyConnection, table: str, keys: int) -> None:
    for name in {*MART_SPECS[table].reads, table, "fc_balances", "_fc_mart_partitions"}:
        con.execute(create_table_sql(name))
    # The bucket count's only input (sql/marts/count_keys.sql): the warehouse's key count, so a shard cuts its keys
    # into as many buckets as the single build does and a statement holds about 1/shards of its rows.
    con.execute(f"CREATE VIEW fc_accounts AS SELECT * FROM range({int(keys)})")
    con.execute("CREATE VIEW fc_latest_balances AS SELECT * FROM range(0)")


def _load(con: duckdb.DuckDBPyConnection, catalog: Catalog, read: Read, snapshot_id: int, index: int,
          count: int) -> int:
    """Insert the shard's keys of one input (at the plan's snapshot) into its in-memory table, batch by batch."""
    from pipelines.warehouse.catalog import load_table

    scan = load_table(catalog, read.table).scan(row_filter=_row_filter(read), snapshot_id=snapshot_id)
    reader = scan.to_arrow_batch_reader()
    con.register("_shard_input", reader)
    try:
        return int(con.execute(load_sql("marts/shard_load").format(table=read.table),
                               {"shard": index, "shards": count}).fetchone()[0])
    finally:
        con.unregister("_shard_input")


def shard_file(task: ShardTask, index: int) -> Path:
    return Path(task.staging) / f"{task.table}.shard-{index}-of-{task.count}.parquet"


def build_shard(task: ShardTask, index: int, catalog_properties: dict[str, str], memory_limit: str) -> tuple[Path, int]:
    """Build the shard `index` of the task's days; its staged Parquet file and rows."""
    if not 0 <= index < task.count:
        raise MartBuildError(f"shard {index} of {task.count} does not exist")
    first, last = task.days
    settings = task.settings
    target = shard_file(task, index)
    spill = Path(task.staging) / f".spill-{task.table}-{index}"
    from pipelines.warehouse.catalog import open_catalog

    catalog = open_catalog(catalog_properties)
    con = _connect(memory_limit, spill)
    try:
        _create_tables(con, task.table, task.keys)
        for read in shard_reads(task.table, first, last, settings, task.previous_built):
            snapshot_id = task.snapshots.get(read.table)
            if snapshot_id is not None:  # None: nothing was ever published, the table is empty
                _load(con, catalog, read, snapshot_id, index, task.count)
        if task.previous_built:
            con.execute(load_sql("marts/record_build"), {"mart": task.table, "day": first - timedelta(days=1),
                                                         "built_at": datetime.fromisoformat(task.build_at),
                                                         "row_count": 0})
        build_partitions(con, task.table, first, last, datetime.fromisoformat(task.build_at), settings)
        rows = _stage(con, task.table, first, last, target)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return target, rows


def _stage(con: duckdb.DuckDBPyConnection, table: str, first: date, last: date, target: Path) -> int:
    """Write the built days to `target` (under a temporary name, renamed when complete: a half-written file is never
    taken for a shard's output)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    sql = load_sql("marts/shard_rows").format(table=table, column=PARTITION_COLUMNS[table])
    reader = con.sql(sql, params={"first": first, "last": last}).to_arrow_reader(_READ_BATCH_ROWS)
    rows = 0
    with pq.ParquetWriter(partial, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    partial.replace(target)
    return rows
