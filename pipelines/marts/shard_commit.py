"""The one commit of a sharded mart build: the shards' staged Parquet files into the warehouse's mart table in one
DuckDB transaction (delete the run's days, insert every shard's rows, record each day's count), before the run's
Iceberg publish; and the clean-up of staged files.

A crash before the transaction commits leaves the mart as it was (the files of a failed run are never read by
another: each run stages under its own folder, removed after its commit or, left by a crash, by a later plan).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.marts.build import PARTITION_COLUMNS, HistorySettings, MartBuildError, record_days
from pipelines.marts.shard_build import STAGING_DIR_NAME, ShardTask, shard_reads
from pipelines.sql import load_sql
from pipelines.warehouse.store import Warehouse

# A staging folder of another run untouched this long is a crashed run's: a later plan removes it. Well past any
# build's duration, so a concurrent run's live files are never taken.
STALE_STAGING_SECONDS = 24 * 3600


def staging_folder(warehouse: str | Path, run_id: str) -> Path:
    return Path(warehouse) / STAGING_DIR_NAME / run_id


def remove_stale_staging(warehouse: str | Path, run_id: str, now: float | None = None) -> list[Path]:
    """Remove staging folders of other runs untouched for STALE_STAGING_SECONDS; the ones removed."""
    root = Path(warehouse) / STAGING_DIR_NAME
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        if folder.name != run_id and now - folder.stat().st_mtime > STALE_STAGING_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def plan_shards(
    wh: Warehouse, table: str, first: date, last: date, build_at: datetime, settings: HistorySettings, count: int,
    run_id: str,
) -> ShardTask:
    """What every shard of the run builds (the open warehouse's writer lock held, briefly): the seed decision and
    bucket sizing the single build would take, and the Iceberg snapshot of each input the shards read, published
    first so Iceberg holds what DuckDB holds (a no-op when it already does)."""
    if table not in PARTITION_COLUMNS:
        raise MartBuildError(f"{table} is not a partitioned mart; partitioned: {', '.join(PARTITION_COLUMNS)}")
    with wh.connection() as con:
        previous_built = bool(con.execute(load_sql("marts/partition_built"),
                                          {"mart": table, "day": first - timedelta(days=1)}).fetchone()[0])
        keys = int(con.execute(load_sql("marts/count_keys")).fetchone()[0])
    reads = shard_reads(table, first, last, settings, previous_built)
    for read in reads:
        wh.publish([read.table], days=None if read.first is None else (read.first, read.last), run_id=run_id)
    from pipelines.warehouse.catalog import load_table  # pyiceberg: only when sharding

    snapshots = {}
    for read in reads:
        snapshot = load_table(wh.catalog, read.table).current_snapshot()
        snapshots[read.table] = snapshot.snapshot_id if snapshot is not None else None
    remove_stale_staging(wh.directory, run_id)
    return ShardTask(
        table=table, first=first.isoformat(), last=last.isoformat(), build_at=build_at.isoformat(),
        history_start=settings.history_start.isoformat(), carry_forward_days=settings.carry_forward_days,
        count=count, keys=keys, previous_built=previous_built, snapshots=snapshots,
        staging=str(staging_folder(wh.directory, run_id) / table))


def commit_shards(
    con: duckdb.DuckDBPyConnection, table: str, first: date, last: date, build_at: datetime, files: list[Path]
) -> int:
    """Replace the days first..last of `table` with the shards' rows in one transaction; the rows."""
    if table not in PARTITION_COLUMNS:
        raise MartBuildError(f"{table} is not a partitioned mart; partitioned: {', '.join(PARTITION_COLUMNS)}")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise MartBuildError(f"{table}: shard file(s) missing, nothing committed: {', '.join(missing)}")
    column = PARTITION_COLUMNS[table]
    con.begin()
    try:
        con.execute(load_sql("marts/delete_partitions").format(table=table, column=column),
                    {"first": first, "last": last})
        con.execute(load_sql("marts/insert_shards").format(table=table, column=column),
                    {"files": [str(path) for path in files], "first": first, "last": last})
        rows = record_days(con, table, first, last, build_at)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return rows


def remove_staging(folder: str | Path) -> None:
    """Remove a committed mart's staging folder, and the run's folder once no mart's is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # another mart of the run still stages there
        Path(folder).parent.rmdir()
