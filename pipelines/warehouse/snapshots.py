"""Iceberg snapshots: listing them, reading a table as it stood (time travel), and erasing old ones' files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.snapshots import Snapshot

from pipelines.warehouse.base import WarehouseError
from pipelines.warehouse.catalog import load_table
from pipelines.warehouse.publish import RANGE_PROPERTY, RUN_ID_PROPERTY

ERASURE_PROPERTY = "fc.erasure"  # a snapshot made by a forget to drop the removed files' manifest entries


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a table: when, which run committed it, what it changed and the rows the table then held."""

    snapshot_id: int
    committed_at: datetime
    run_id: str
    operation: str
    rows: int
    partition_range: str
    current: bool


def snapshot_rows(table: IcebergTable, snapshot: Snapshot) -> int:
    """Rows the table held at the snapshot: its summary's total-records (every pyiceberg commit writes it)."""
    summary = snapshot.summary
    total = summary.get("total-records") if summary is not None else None
    if total is not None:
        return int(total)
    return table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().num_rows


def list_snapshots(catalog: Catalog, name: str) -> list[SnapshotInfo]:
    """The table's snapshots, oldest first."""
    table = load_table(catalog, name)
    current = table.current_snapshot()
    found = []
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        summary = snapshot.summary
        found.append(SnapshotInfo(
            snapshot_id=snapshot.snapshot_id,
            committed_at=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC),
            run_id=(summary.get(RUN_ID_PROPERTY) if summary is not None else None) or "",
            operation=summary.operation.value if summary is not None else "",
            rows=snapshot_rows(table, snapshot),
            partition_range=(summary.get(RANGE_PROPERTY) if summary is not None else None) or "",
            current=current is not None and snapshot.snapshot_id == current.snapshot_id,
        ))
    return found


def snapshot_at(table: IcebergTable, as_of: datetime) -> Snapshot | None:
    """The snapshot that was current at `as_of` (None: the table had none yet)."""
    if as_of.tzinfo is None:
        raise WarehouseError("a time to read as of must carry its zone (e.g. 2026-11-30T12:00Z)")
    return table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))


def read_table(
    catalog: Catalog, name: str, as_of: datetime | None = None, snapshot_id: int | None = None,
) -> pa.Table:
    """The table's rows as they stood at a time or snapshot (the current ones when neither is given).

    A time before the table's first snapshot, or past the retention (see the README), reads as empty.
    """
    table = load_table(catalog, name)
    if snapshot_id is not None:
        if table.snapshot_by_id(snapshot_id) is None:
            raise WarehouseError(f"fc_balances.{name} has no snapshot {snapshot_id} (expired or never made)")
        return table.scan(snapshot_id=snapshot_id).to_arrow()
    if as_of is not None:
        snapshot = snapshot_at(table, as_of)
        if snapshot is None:
            return table.schema().as_arrow().empty_table()
        return table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
    return table.scan().to_arrow()


# ------------------------------------------------------------------------------------------- erasing history


def _referenced(table: IcebergTable) -> set[str]:
    """Every file the table's metadata still references: its metadata JSON, manifest lists, manifests, data."""
    paths = {table.metadata_location}
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    for statistics in table.metadata.statistics:
        paths.add(statistics.statistics_path)
    return {_plain(path) for path in paths}


def _plain(location: str) -> str:
    scheme, _netloc, path = PyArrowFileIO.parse_location(location)
    return f"{scheme}://{path}" if scheme != "file" else path


def _filesystem(table: IcebergTable) -> tuple[pafs.FileSystem, str, str]:
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise WarehouseError(f"erasing unreferenced files needs pyiceberg's PyArrowFileIO, got {type(io).__name__}")
    scheme, netloc, path = PyArrowFileIO.parse_location(table.location())
    return io.fs_by_scheme(scheme, netloc), scheme, path


def erase_history(catalog: Catalog, name: str, run_id: str) -> tuple[int, int]:
    """Keep only a fresh current snapshot and delete every file no longer referenced (data files, manifests,
    manifest lists, old metadata JSON); (snapshots expired, files deleted).

    An overwrite records the files it removed, with their column bounds, in a manifest of deleted entries; an
    empty append first gives a snapshot without that manifest, so no kept manifest names a removed file's values.
    pyiceberg's expire_snapshots only drops the snapshots from the metadata and leaves their files
    (apache/iceberg-python #2604), so the files are listed and removed here.
    """
    table = load_table(catalog, name)
    if table.current_snapshot() is not None and len(table.snapshots()) > 1:
        with table.transaction() as transaction, transaction.update_snapshot(
            snapshot_properties={RUN_ID_PROPERTY: run_id, ERASURE_PROPERTY: "true"}
        ).fast_append():
            pass  # no file added: the snapshot only carries the live manifests forward
        table = load_table(catalog, name)
    current = table.current_snapshot()
    old = [s.snapshot_id for s in table.snapshots() if current is None or s.snapshot_id != current.snapshot_id]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
        table = load_table(catalog, name)
    keep = _referenced(table)
    filesystem, scheme, root = _filesystem(table)
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    deleted = 0
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        shown = f"{scheme}://{info.path}" if scheme != "file" else info.path
        if shown not in keep:
            filesystem.delete_file(info.path)
            deleted += 1
    return len(old), deleted
