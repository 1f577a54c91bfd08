"""Settings are read when a run starts, never at import (but FC_BALANCES_MART_SHARDS, which shapes the marts' assets),
and the CLI hands them over without touching os.environ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import jobs as cli_jobs
from pipelines.cli import main as cli
from pipelines.definitions import build_definitions
from pipelines.warehouse import DUCKDB_FILE_NAME

ROOT = Path(__file__).resolve().parents[1]
OUR_PREFIXES = ("FC_BALANCES_", "STRIPE_", "AWS_")

# Replaces os.environ by a mapping that records every key read, then imports the code location.
_RECORD_IMPORT = """
import json, os, sys
read = []
class Recording(dict):
    def __getitem__(self, key):
        read.append(key); return super().__getitem__(key)
    def get(self, key, default=None):
        read.append(key); return super().get(key, default)
    def __contains__(self, key):
        read.append(key); return super().__contains__(key)
os.environ = Recording(os.environ)
import pipelines.definitions as d
d.build_definitions()
print(json.dumps(read))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith((*OUR_PREFIXES, "DAGSTER_HOME"))}
    return {**env, **extra}


def test_importing_the_code_location_reads_only_the_shard_count() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _RECORD_IMPORT], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=_clean_env(FC_BALANCES_WAREHOUSE="/nonexistent", STRIPE_API_KEY="sk_test_x"),
    )
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout.strip().splitlines()[-1])
    assert read, "the recorder saw no reads at all, so it proves nothing"  # Dagster itself reads its own variables
    # STRIPE_LOG is the stripe SDK's own switch, read by its import; every other one is ours. The one setting read
    # when the definitions are built is FC_BALANCES_MART_SHARDS: it decides the marts' assets (plain or sharded).
    ours = {key for key in read if key.startswith(OUR_PREFIXES) and key != "STRIPE_LOG"}
    assert ours == {"FC_BALANCES_MART_SHARDS"}


def test_a_bad_value_does_not_break_the_import() -> None:
    # Before settings moved onto the resources, this import raised; now the run that uses the value fails.
    done = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env=_clean_env(FC_BALANCES_LOCK_TIMEOUT="soon", FC_BALANCES_MAX_RPS="fast"),
    )
    assert done.returncode == 0, done.stderr


def _run_events_job(defs: dg.Definitions) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("fc_events_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def test_the_same_definitions_see_a_changed_setting_on_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = build_definitions()  # built once, as a `dagster dev` code location is
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(first))
    assert _run_events_job(defs).success
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(second))
    assert _run_events_job(defs).success
    assert (first / DUCKDB_FILE_NAME).is_file() and (second / DUCKDB_FILE_NAME).is_file()

    monkeypatch.setenv("FC_BALANCES_LOCK_TIMEOUT", "soon")
    result = _run_events_job(defs)
    assert not result.success
    assert cli_jobs.failure_message(result) == "FC_BALANCES_LOCK_TIMEOUT must be a number, got 'soon'"


def test_cli_run_sets_no_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith((*OUR_PREFIXES, "DAGSTER_HOME"))]:
        monkeypatch.delenv(name)
    written: list[str] = []
    # os.environ's item assignment and deletion go through these two; recording them catches every write.
    monkeypatch.setattr(os, "putenv", lambda key, value: written.append(str(key)))
    monkeypatch.setattr(os, "unsetenv", lambda key: written.append(str(key)))
    before = dict(os.environ)
    warehouse = tmp_path / "wh"
    code = cli.main(["run", "--warehouse", str(warehouse), "--demo-customers", "3", "--sandbox-latency", "0.05",
                     "--discovery", "all", "--quiet"])
    assert code == 0
    assert written == [] and dict(os.environ) == before
    assert (warehouse / DUCKDB_FILE_NAME).is_file()
    assert (warehouse / "iceberg" / "catalog.db").is_file()


def test_a_scheduled_run_names_a_bad_setting_before_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest step reads every setting it uses before calling Stripe, so an unreachable API is never the
    error a bad batch size hides behind."""
    import socket

    from pipelines.definitions import INGEST_JOB_NAME

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_x")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FC_BALANCES_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("FC_BALANCES_BATCH_SIZE", "lots")
    result = build_definitions().resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    message = cli_jobs.failure_message(result)
    assert message == "FC_BALANCES_BATCH_SIZE must be a whole number of 1 or more, got 'lots'"
    assert not (tmp_path / "wh").exists()
