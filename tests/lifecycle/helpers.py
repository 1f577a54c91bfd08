"""Builders for the lifecycle tests: a real warehouse filled from the sandbox, and readers that use plain ids."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.events import fc_events
from pipelines.contract.tables import TABLES
from pipelines.events import EVENT_STORE_RELATIVE, EventsCursor, EventStore, poll_events
from pipelines.resources import WarehouseResource
from pipelines.stripe_fc.client import ClientSettings, StripeFCClient
from tests.integration.helpers import run_ingest

FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))
REPO = Path(__file__).resolve().parents[2]


def store_path(warehouse: Path) -> Path:
    return warehouse / EVENT_STORE_RELATIVE


def poll_into_store(sandbox: Any, warehouse: Path, cursor: EventsCursor | None = None) -> Any:
    async def go() -> Any:
        client = StripeFCClient(ClientSettings(api_key=sandbox.api_key, api_base=sandbox.base_url))
        try:
            with EventStore(store_path(warehouse)) as store:
                return await poll_events(client, store, cursor or EventsCursor())
        finally:
            await client.aclose()

    return asyncio.run(go())


def drain(sandbox: Any, warehouse: Path) -> dg.ExecuteInProcessResult:
    """An fc_events run; Stripe is reached (for a gap) through the environment, as the code location does."""
    saved = {name: os.environ.get(name) for name in ("STRIPE_API_KEY", "STRIPE_API_BASE")}
    os.environ.update({"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url})
    try:
        return dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                              instance=dg.DagsterInstance.ephemeral())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_marts(warehouse: Path) -> None:
    """The marts' out-of-date days, as `fc-balances marts` builds them (they are daily-partitioned assets)."""
    done = cli(["marts", "--quiet"], warehouse)
    assert done.returncode == 0, done.stderr


def build_warehouse(sandbox: Any, warehouse: Path) -> None:
    """Every kind of table filled: an ingest, the events it caused landed through the store, and the marts."""
    assert run_ingest(sandbox, warehouse).success
    poll_into_store(sandbox, warehouse)
    assert drain(sandbox, warehouse).success
    build_marts(warehouse)


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def subject_tables() -> list[str]:
    return [name for name, t in TABLES.items() if {"account_id", "customer_id"} & set(t.column_names)]


def _about(table: str, customer: str, accounts: list[str]) -> tuple[str, list[Any]]:
    """A WHERE clause (written here with the plain ids, independent of the code under test) for a subject."""
    names = set(TABLES[table].column_names)
    parts, params = [], []
    if "account_id" in names:
        parts.append("list_contains(?, account_id)")
        params.append(accounts)
    if "customer_id" in names:
        parts.append("customer_id = ?")
        params.append(customer)
    return " OR ".join(parts), params


def counts(warehouse: Path, customer: str, accounts: list[str]) -> dict[str, tuple[int, int]]:
    """Per table: (rows about the subject, rows about everyone else)."""
    found = {}
    for table in subject_tables():
        where, params = _about(table, customer, accounts)
        about, total = query(warehouse, f'SELECT count(*) FILTER (WHERE {where}), count(*) FROM "{table}"', params)[0]
        found[table] = (about, total - about)
    return found


def iceberg_about(warehouse: Path, customer: str, accounts: list[str], setting: str | None = None) -> dict[str, int]:
    """Rows about the subject in each published table's current Iceberg snapshot, read through the catalog."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.contract.tables import EXPORTED_TABLES
    from tests.iceberg_tables import iceberg_table

    found = {}
    for table in subject_tables():
        if table not in EXPORTED_TABLES:
            continue
        data = iceberg_table(warehouse, table, setting)
        hits = 0
        if "account_id" in data.column_names:
            hits += pc.sum(pc.is_in(data["account_id"], value_set=pa.array(accounts))).as_py() or 0
        if "customer_id" in data.column_names and "account_id" not in data.column_names:
            hits += pc.sum(pc.equal(data["customer_id"], customer)).as_py() or 0
        found[table] = hits
    return found


def file_digests(folder: Path) -> dict[str, str]:
    """Every file under a folder (the Iceberg tables' data, manifests, metadata, the catalog), by content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def avro_blocks(raw: bytes) -> bytes:
    """The decompressed data blocks of an Avro container file (manifests and manifest lists: column bounds hide
    there, compressed), so a byte search sees the values."""
    import zlib

    def long_at(position: int) -> tuple[int, int]:
        shift = result = 0
        while True:
            byte = raw[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1), position

    position = 4  # b"Obj\x01"
    meta: dict[bytes, bytes] = {}
    while True:
        count, position = long_at(position)
        if count == 0:
            break
        if count < 0:
            _, position = long_at(position)
            count = -count
        for _ in range(count):
            key_length, position = long_at(position)
            key = raw[position:position + key_length]
            position += key_length
            value_length, position = long_at(position)
            meta[key] = raw[position:position + value_length]
            position += value_length
    position += 16  # sync marker
    codec = meta.get(b"avro.codec", b"null")
    out = []
    while position < len(raw):
        _, position = long_at(position)
        size, position = long_at(position)
        block = raw[position:position + size]
        position += size + 16
        out.append(zlib.decompress(block, -15) if codec == b"deflate" else block)
    return b"".join(out)


def files_naming(warehouse: Path, needles: list[str]) -> list[str]:
    """Every file under the warehouse whose bytes (Parquet rows and Avro blocks decoded too) hold one of the ids.

    The DuckDB file is left to its own check: DuckDB keeps freed blocks until it reuses them.
    """
    import pyarrow.parquet as pq

    found = []
    for path in sorted(p for p in warehouse.rglob("*") if p.is_file()):
        if path.name.startswith("fc_balances.duckdb"):
            continue
        raw = path.read_bytes()
        views = [raw]
        if raw[:4] == b"PAR1":
            views.append(repr(pq.read_table(path).to_pylist()).encode())
        if raw[:4] == b"Obj\x01":
            views.append(avro_blocks(raw))
        if any(needle.encode() in view for view in views for needle in needles):
            found.append(str(path.relative_to(warehouse)))
    return found


def copy_warehouse(template: Path, copy: Path) -> Path:
    """A copy of a warehouse folder that owns its Iceberg tables.

    Iceberg metadata names its files by absolute path, so a copied iceberg/ folder would still point at the
    template's files: the copy leaves it out, forgets what was published and publishes its own.
    """
    import shutil

    import duckdb

    from pipelines.contract.tables import EXPORTED_TABLES
    from pipelines.warehouse import Warehouse

    shutil.copytree(template, copy, ignore=shutil.ignore_patterns("iceberg"))
    with duckdb.connect(str(copy / "fc_balances.duckdb")) as con:
        con.execute("DELETE FROM _fc_iceberg_partitions")
    with Warehouse(copy) as warehouse:
        warehouse.publish(EXPORTED_TABLES, run_id="copy")
    return copy


def store_events_about(warehouse: Path, customer: str, accounts: list[str]) -> int:
    import sqlite3

    with sqlite3.connect(store_path(warehouse)) as con:
        rows = con.execute("SELECT account_id, payload FROM stored_events").fetchall()
    return sum(1 for account_id, payload in rows if account_id in accounts or customer in payload)


def cli(args: list[str], warehouse: Path, extra_env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    env["FC_BALANCES_WAREHOUSE"] = str(warehouse)
    env.update(extra_env or {})
    return subprocess.run([FC_BALANCES, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def accounts_of(warehouse: Path, customer: str) -> list[str]:
    return [r[0] for r in query(warehouse, "SELECT account_id FROM fc_accounts WHERE customer_id = ? ORDER BY 1",
                                [customer])]
