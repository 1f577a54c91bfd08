"""No API key, and no customer's personal data, in any output, Dagster file or warehouse file: raw and decoded bytes."""

from __future__ import annotations

import gzip
import secrets
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.faults.harness import FULL_PERMISSIONS, cli_env, run_cli, storm_fixtures


def random_body(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def decoded_views(path: Path) -> Iterator[tuple[str, bytes]]:
    """The file's raw bytes, and where they may hide text in compressed or binary form, that text too."""
    raw = path.read_bytes()
    yield "raw", raw
    if raw[:2] == b"\x1f\x8b":
        yield "gunzipped", gzip.decompress(raw)
    if path.suffix == ".parquet" and raw[:4] == b"PAR1":
        yield "parquet rows", repr(pq.read_table(path).to_pylist()).encode()
    if path.suffix == ".avro" and raw[:4] == b"Obj\x01":  # Iceberg manifests: compressed column bounds
        from tests.lifecycle.helpers import avro_blocks

        yield "avro blocks", avro_blocks(raw)
    if path.suffix == ".duckdb":
        with duckdb.connect(str(path), read_only=True) as connection:
            tables = connection.execute("select schema_name, table_name from duckdb_tables()").fetchall()
            for schema, table in tables:
                rows = connection.execute(f'select * from "{schema}"."{table}"').fetchall()
                yield f"table {schema}.{table}", repr(rows).encode()


def find_needles(needles: dict[str, str], sources: dict[str, bytes]) -> list[str]:
    """`<needle name> in <source>` for every needle found, case-sensitively, as bytes."""
    return [f"{name} in {where}" for where, data in sources.items() for name, needle in needles.items()
            if needle.encode() in data]


def files_under(folder: Path) -> dict[str, bytes]:
    sources: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for view, data in decoded_views(path):
            sources[f"{path} ({view})"] = data
    return sources


def test_no_key_or_customer_email_in_outputs_dagster_home_or_warehouse(
    sandbox_factory, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    # Distinctive keys: the 24 random characters are what is searched for, so a key with its prefix redacted
    # but its body printed is still found.
    bodies = {name: random_body() for name in ("secret key", "restricted key", "restricted key without events_read",
                                               "wrong key")}
    secret_key = f"sk_test_{bodies['secret key']}"
    restricted_key = f"rk_test_{bodies['restricted key']}"
    restricted_without_events = f"rk_test_{bodies['restricted key without events_read']}"
    wrong_key = f"sk_test_{bodies['wrong key']}"
    fixtures = storm_fixtures(int(time.time()) - 7_200)
    email_domain = f"{random_body(10).lower()}.example.com"
    for customer in fixtures["customers"]:
        customer["email"] = customer["email"].replace("example.com", email_domain)
    emails = {customer["email"]: customer["email"] for customer in fixtures["customers"]}

    sandbox = sandbox_factory(
        api_key=secret_key, fixtures=fixtures, refresh_latency=(0.2, 0.2), refresh_cooldown=0.0,
        restricted_keys={restricted_key: FULL_PERMISSIONS,
                         restricted_without_events: FULL_PERMISSIONS - {"events_read"}},
    )
    warehouse, dagster_home = tmp_path / "wh", tmp_path / "dagster_home"
    dagster_home.mkdir()

    def run(key: str) -> subprocess.CompletedProcess[str]:
        return run_cli(cli_env(key, sandbox.base_url, warehouse, DAGSTER_HOME=str(dagster_home)))

    runs = {"secret key": run(secret_key)}
    sandbox.update_settings(fault_rate=0.15)
    runs["secret key, faults"] = run(secret_key)
    sandbox.update_settings(fault_rate=0.0)
    runs["restricted key"] = run(restricted_key)
    runs["restricted key without events_read"] = run(restricted_without_events)
    runs["wrong key"] = run(wrong_key)

    assert [name for name, done in runs.items() if done.returncode != 0] == [
        "restricted key without events_read", "wrong key"], {n: d.stderr for n, d in runs.items()}
    assert sandbox.stats()["faults"], "the faulty run met no faults"
    # Dagster really kept its event log and run storage in DAGSTER_HOME (else scanning it proves nothing).
    assert any(dagster_home.rglob("*.db")), sorted(dagster_home.rglob("*"))
    assert (warehouse / "fc_balances.duckdb").exists() and any((warehouse / "iceberg").rglob("*.parquet"))
    assert any((warehouse / "iceberg").rglob("*.avro"))  # the manifests are searched too

    sources: dict[str, bytes] = {}
    for name, done in runs.items():
        sources[f"stdout of the run with the {name}"] = done.stdout.encode()
        sources[f"stderr of the run with the {name}"] = done.stderr.encode()
    sources |= files_under(dagster_home)
    sources |= files_under(warehouse)
    captured = capfd.readouterr()
    sources["pytest captured stdout"] = captured.out.encode()
    sources["pytest captured stderr"] = captured.err.encode()
    sources["pytest captured log"] = caplog.text.encode()

    assert find_needles(bodies, sources) == []
    warehouse_sources = {where: data for where, data in sources.items() if where.startswith(str(warehouse))}
    assert find_needles(emails, warehouse_sources) == []
