"""A warehouse's Iceberg catalog, and each exported table's Iceberg schema and partition spec from its declaration."""

from __future__ import annotations

import json
import os
import re
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table as IcebergTable
from pyiceberg.transforms import DayTransform, IdentityTransform, Transform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from pipelines.contract.tables import TABLES, Partition
from pipelines.warehouse.base import WarehouseError
from pipelines.warehouse.catalog_config import (  # noqa: F401 (the catalog's names, used through this module too)
    CATALOG_NAME,
    CATALOG_SETTING,
    FORMAT_VERSION,
    ICEBERG_DIR_NAME,
    NAMESPACE,
    catalog_errors,
    catalog_properties,
    embedded_properties,
    shown_properties,
)

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_SCALARS: dict[str, IcebergType] = {
    "VARCHAR": StringType(),
    "BIGINT": LongType(),
    "INTEGER": IntegerType(),
    "DOUBLE": DoubleType(),
    "BOOLEAN": BooleanType(),
    "DATE": DateType(),
    "TIMESTAMP WITH TIME ZONE": TimestamptzType(),
}


# Catalogs opened by this process, by their properties: a daily `fc-balances marts` opens the warehouse about 20
# times, and each load built an SQLAlchemy engine, checked the catalog's tables and its namespace (~0.1 s).
_OPENED: dict[str, tuple[tuple[int, int] | None, Catalog]] = {}
_CHECKED: weakref.WeakKeyDictionary[Catalog, set[str]] = weakref.WeakKeyDictionary()


def _sqlite_file(properties: dict[str, str]) -> Path | None:
    uri = properties.get("uri", "")
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    """The SQLite file's (device, inode): a catalog file removed and made again is a new catalog."""
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return (-1, -1)
    return (found.st_dev, found.st_ino)


def open_catalog(properties: dict[str, str]) -> Catalog:
    """The catalog (its SQLite folder created for the embedded default), with the fc_balances namespace; opened
    once per process and properties (the tables themselves are loaded fresh on every use)."""
    sqlite_file = _sqlite_file(properties)
    key = json.dumps(properties, sort_keys=True)
    opened = _OPENED.get(key)
    if opened is not None and sqlite_file is not None and opened[0] == _file_identity(sqlite_file):
        return opened[1]
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    with catalog_errors(properties, "opening the catalog"):
        catalog = load_catalog(CATALOG_NAME, **properties)
        catalog.create_namespace_if_not_exists(NAMESPACE)
    if sqlite_file is not None:  # a server catalog is loaded each time: its engine may be shared by nothing else
        _OPENED[key] = (_file_identity(sqlite_file), catalog)
    return catalog


def create_embedded_catalog(properties: dict[str, str], names: Iterable[str]) -> None:
    """A new embedded SQLite catalog appears whole: built under a temporary name with its namespace and every named
    table, then renamed into place, so a reader (or the run after a kill -9) never finds it with tables missing.
    Nothing to do for a server catalog or an existing file (the caller holds the writer lock: no one else makes it)."""
    sqlite_file = _sqlite_file(properties)
    if sqlite_file is None or sqlite_file.exists():
        return
    sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    staging = sqlite_file.with_name(f"{sqlite_file.name}.new-{os.getpid()}")
    staging.unlink(missing_ok=True)  # left by a killed process of the same pid: never renamed, so never read
    catalog = load_catalog(CATALOG_NAME, **{**properties, "uri": f"sqlite:///{staging}"})
    catalog.create_namespace_if_not_exists(NAMESPACE)
    for name in names:
        ensure_table(catalog, name)
    engine = getattr(catalog, "engine", None)
    if engine is not None:
        engine.dispose()
    os.replace(staging, sqlite_file)


# ------------------------------------------------------------------------------------------- schemas and specs


def iceberg_type(duckdb_type: str, next_id: list[int]) -> IcebergType:
    """The Iceberg type of a declared DuckDB type; list element ids are drawn from next_id."""
    if duckdb_type.endswith("[]"):
        element_id = next_id[0]
        next_id[0] += 1
        return ListType(element_id, iceberg_type(duckdb_type[:-2], next_id), element_required=False)
    if match := _DECIMAL.match(duckdb_type):
        return DecimalType(int(match.group(1)), int(match.group(2)))
    try:
        return _SCALARS[duckdb_type]
    except KeyError:
        raise ValueError(f"no Iceberg type for DuckDB type {duckdb_type!r}") from None


def iceberg_schema(name: str) -> Schema:
    """The declared table as an Iceberg schema: columns in order, required where declared NOT NULL."""
    columns = TABLES[name].columns
    next_id = [len(columns) + 1]
    fields = [
        NestedField(index, column.name, iceberg_type(column.type, next_id), required=not column.nullable,
                    doc=column.description)
        for index, column in enumerate(columns, start=1)
    ]
    return Schema(*fields)


def _transform(partition: Partition) -> Transform[Any, Any]:
    if partition.transform == "day":
        return DayTransform()
    if partition.transform == "identity":
        return IdentityTransform()
    raise ValueError(f"unknown partition transform {partition.transform!r}")


def partition_spec(name: str, schema: Schema) -> PartitionSpec:
    """The declared partition as a hidden-partitioning spec (day(as_of), identity(day), ...), or unpartitioned."""
    partition = TABLES[name].partition
    if partition is None:
        return UNPARTITIONED_PARTITION_SPEC
    source = schema.find_field(partition.column)
    suffix = "_day" if partition.transform == "day" else ""
    return PartitionSpec(PartitionField(
        source_id=source.field_id, field_id=1000, transform=_transform(partition), name=partition.column + suffix))


def identifier(name: str) -> tuple[str, str]:
    return (NAMESPACE, name)


def ensure_table(catalog: Catalog, name: str) -> IcebergTable:
    """The table, created from its declaration, or evolved to it when the declaration gained columns."""
    schema = iceberg_schema(name)
    try:
        table = catalog.load_table(identifier(name))
    except NoSuchTableError:
        return catalog.create_table_if_not_exists(
            identifier(name), schema=schema, partition_spec=partition_spec(name, schema),
            properties={"format-version": FORMAT_VERSION},
        )
    have = table.schema()
    if [f.name for f in have.fields] != [f.name for f in schema.fields] or any(
        have.find_field(f.name).field_type != f.field_type for f in schema.fields
    ):
        with table.update_schema(allow_incompatible_changes=False) as update:
            update.union_by_name(schema)
        table = catalog.load_table(identifier(name))
    return table


def load_table(catalog: Catalog, name: str) -> IcebergTable:
    """A published table; a one-line error when it is not in the catalog."""
    try:
        return catalog.load_table(identifier(name))
    except NoSuchTableError:
        raise WarehouseError(f"no Iceberg table {NAMESPACE}.{name} in the catalog") from None


def arrow_schema_of(table: IcebergTable) -> pa.Schema:
    """The Arrow schema the table's writer accepts (large strings, required fields not null)."""
    return table.schema().as_arrow()


def ensure_tables(catalog: Catalog, names: Iterable[str]) -> None:
    """Every named table exists (readers find empty ones too) and matches its declaration (a migration added a
    column, maybe in a run killed before its publish). Checked once per process and catalog: the declarations do
    not change while it runs, so later opens skip the tables already checked."""
    checked = _CHECKED.setdefault(catalog, set())
    for name in names:
        if name not in checked:
            ensure_table(catalog, name)
            checked.add(name)
