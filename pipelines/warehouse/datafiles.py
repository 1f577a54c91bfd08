"""Iceberg data files from rows sorted by partition: one file per partition's slice, written two at a time.

pyiceberg's own write of a partitioned Arrow table (`_dataframe_to_data_files`) filters the whole table once per
partition value it holds and copies each result: a chunk of n days is scanned n times. A publish reads a chunk
sorted by partition (and key) from DuckDB instead, so each partition is a contiguous zero-copy slice, written
here as one Parquet file with the table's field ids, and described for the manifest by pyiceberg's own statistics
of the file (column sizes, counts, bounds under the table's metrics settings).

Dictionaries are kept for repeating text only (currencies, types, statuses, run ids): account, customer and event
ids are nearly unique in a file, so their dictionary outgrows its page and falls back to plain after the work of
building it (a features day file: a third smaller without them, and written faster).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import Record

PARTITION_COLUMN = "__fc_partition"  # the partition value, added by the query, dropped before writing
ROW_GROUP_ROWS = 128 * 1024
WRITE_THREADS = 2  # files written at once (this machine has 2 cores; Parquet encoding releases the GIL)
_NEARLY_UNIQUE_TEXT = frozenset({"account_id", "customer_id", "event_id", "payload"})


def partition_text(value: object) -> str:
    """A partition value as the publish's bookkeeping writes it: ISO day, text, or 'null'."""
    if value is None:
        return "null"
    return value.isoformat() if isinstance(value, date) else str(value)


def partition_slices(rows: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """(partition key, its rows without the partition column) of rows sorted by PARTITION_COLUMN: zero-copy
    slices, one per run of equal values."""
    if not rows.num_rows:
        return
    values = rows.column(PARTITION_COLUMN).combine_chunks()
    body = rows.drop_columns([PARTITION_COLUMN])
    runs = pc.run_end_encode(values)
    start = 0
    for value, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        yield partition_text(value), body.slice(start, end - start)
        start = end


def _partition_key(metadata: TableMetadata, rows: pa.Table) -> PartitionKey | None:
    """The partition of a slice's rows (all in one partition), transformed as pyiceberg's own write does."""
    spec = metadata.spec()
    if spec.is_unpartitioned():
        return None
    schema = metadata.schema()
    values = []
    for field in spec.fields:
        source = schema.find_field(field.source_id)
        name = schema.find_column_name(field.source_id)
        assert name is not None
        first = rows.column(name).slice(0, 1).combine_chunks()
        value = field.transform.pyarrow_transform(source.field_type)(first).to_pylist()[0]
        values.append(PartitionFieldValue(field, value))
    return PartitionKey(field_values=values, partition_spec=spec, schema=schema)


class DataFileWriter:
    """Writes one table's data files in Iceberg's layout under its location, and describes each for a manifest."""

    def __init__(self, metadata: TableMetadata, io: FileIO, write_uuid: uuid.UUID, counter: itertools.count[int]):
        self.metadata = metadata
        self.io = io
        self.write_uuid = write_uuid
        self.counter = counter
        self.schema = metadata.schema()
        self.locations = load_location_provider(table_location=metadata.location,
                                                table_properties=metadata.properties)
        self.stats_plan = compute_statistics_plan(self.schema, metadata.properties)
        self.column_ids = parquet_path_to_id_mapping(self.schema)

    def write(self, rows: pa.Table) -> DataFile:
        """One Parquet file of rows of one partition, in the table's Arrow schema (field ids included)."""
        partition_key = _partition_key(self.metadata, rows)
        path = self.locations.new_data_location(
            data_file_name=f"00000-{next(self.counter)}-{self.write_uuid}.parquet", partition_key=partition_key)
        text = [field.name for field in rows.schema if field.name not in _NEARLY_UNIQUE_TEXT
                and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))]
        output = self.io.new_output(path)
        with output.create(overwrite=True) as stream, pq.ParquetWriter(
            stream, schema=rows.schema, compression="zstd", store_decimal_as_integer=True, use_dictionary=text,
        ) as writer:
            writer.write_table(rows, row_group_size=ROW_GROUP_ROWS)
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=writer.writer.metadata, stats_columns=self.stats_plan,
            parquet_column_mapping=self.column_ids)
        return DataFile.from_args(
            content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET,
            partition=partition_key.partition if partition_key else Record(), file_size_in_bytes=len(output),
            sort_order_id=None, spec_id=self.metadata.default_spec_id, equality_ids=None, key_metadata=None,
            **statistics.to_serialized_dict(),
        )

    def write_chunks(self, chunks: Iterator[list[pa.Table]]) -> Iterator[DataFile]:
        """Data files of each chunk's slices (non-empty ones), WRITE_THREADS at a time: a chunk's files are written
        while the next chunk is read, so at most two chunks are held."""
        with ThreadPoolExecutor(WRITE_THREADS) as pool:
            writing: list[Future[DataFile]] = []
            for slices in chunks:  # the next chunk is read here while the previous one's files are written
                for future in writing:
                    yield future.result()
                writing = [pool.submit(self.write, rows) for rows in slices if rows.num_rows]
            for future in writing:
                yield future.result()
