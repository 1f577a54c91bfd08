"""Fault-suite machinery: scripted fixtures, `fc-balances run` subprocesses, kill -9 trials, warehouse comparisons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract.tables import INGEST_TABLES, TABLES
from stripe_sandbox import Sandbox, SandboxConfig, start_sandbox
from tests.warehouse_contract import warehouse_problems

REPO = Path(__file__).resolve().parents[2]
FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))
DUCKDB_FILE = "fc_balances.duckdb"
LOCK_FILE = ".fc_balances.lock"
CONTRACT_TABLES = INGEST_TABLES
CONTRACT_KEYS = {name: TABLES[name].key for name in INGEST_TABLES if TABLES[name].key}
# Columns that two correct runs of the same fixtures legitimately disagree on, left out of every comparison:
# - our clock when a row was written: observed_at, fetched_at, requested_at, and access_stopped_at (the
#   observed_at of the first observation of a stopped account);
# - Stripe's clock when the refresh ran: balance_refresh_last_attempted_at, completed_at (the event's time) and
#   next_refresh_available_at (completion + cooldown);
# - run_id, a fresh Dagster id per run.
# Everything else comes from the fixtures (as_of values are explicit) or is derived from them.
RUN_SPECIFIC_COLUMNS: dict[str, frozenset[str]] = {
    "fc_accounts": frozenset({"observed_at", "balance_refresh_last_attempted_at", "next_refresh_available_at",
                              "access_stopped_at"}),
    "fc_balances": frozenset({"fetched_at"}),
    "fc_balance_refreshes": frozenset({"run_id", "requested_at", "completed_at", "next_refresh_available_at"}),
    "fc_rejected_balances": frozenset({"fetched_at"}),
}
# What every test sandbox shares: loopback, any free port, no demo data, Stripe's test-mode rate limits.
SANDBOX_BASE: dict[str, Any] = {"port": 0, "demo_customers": 0, "rate_limit": True}
FULL_PERMISSIONS = frozenset({
    "customers_read", "financial_connections_accounts_read", "financial_connections_accounts_write", "events_read",
})

RUN_TIMEOUT = 120.0  # a run of these scenarios takes seconds; one still going after this long hangs

Snapshot = dict[str, list[tuple[Any, ...]]]


# ------------------------------------------------------------------------------------------------- fixtures


def cash(as_of: int, current: dict[str, Any] | None, available: dict[str, Any] | None = None) -> dict[str, Any]:
    # Stripe sends the hash named by type even when its amounts are unknown (they are null inside it).
    return {"as_of": as_of, "type": "cash", "current": current, "cash": {"available": available}}


def credit(as_of: int, current: dict[str, Any], used: dict[str, Any] | None) -> dict[str, Any]:
    return {"as_of": as_of, "type": "credit", "current": current, "credit": {"used": used}}


def succeeded(balance: Any) -> dict[str, Any]:
    return {"status": "succeeded", "balance": balance}


FAILED: dict[str, Any] = {"status": "failed"}


def account(account_id: str, customer: str, outcomes: list[dict[str, Any]] | None = None,
            **fields: Any) -> dict[str, Any]:
    """A fixture account (active cash checking with the balances permission unless `fields` say otherwise)."""
    doc: dict[str, Any] = {
        "id": account_id, "customer": customer, "institution_name": "Fault Bank", "category": "cash",
        "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
        "created": 1_764_000_000, "balance": None, "balance_refresh": None,
    }
    if outcomes is not None:
        doc["refresh_outcomes"] = outcomes
    doc.update(fields)
    return doc


def customers(count: int, prefix: str, email_domain: str = "example.com") -> list[dict[str, Any]]:
    return [{"id": f"cus_{prefix}{i:02d}", "email": f"{prefix}{i:02d}@{email_domain}", "created": 1_764_000_000 + i}
            for i in range(count)]


def storm_fixtures(base: int) -> dict[str, Any]:
    """40 accounts over 15 customers: cash, credit, multi-currency, failing refreshes, every kind of skip.

    `base` is an as_of (unix seconds) a little in the past; every balance has an explicit as_of from it, so two
    sandboxes serving these fixtures serve the same rows whenever their refreshes run. Each account is refreshed
    at most once per fresh sandbox, so only the first scripted outcome matters.
    """
    custs = customers(15, "storm")
    ids = [c["id"] for c in custs]
    accounts: list[dict[str, Any]] = []
    for i in range(12):  # cash, one currency, some with only current
        available = None if i % 4 == 3 else {"usd": 90_000 + i}
        accounts.append(account(f"fca_cash{i:02d}", ids[i % 15], [succeeded(cash(base + i, {"usd": 100_000 + i},
                                                                             available))]))
    for i in range(6):  # credit cards: negative current, used as Stripe sends it
        accounts.append(account(f"fca_card{i:02d}", ids[(i + 3) % 15],
                                [succeeded(credit(base + 100 + i, {"usd": -5_000 - i}, {"usd": 5_000 + i}))],
                                category="credit", subcategory="credit_card"))
    for i in range(4):  # several currencies in one map; eur only in current; zero- and three-decimal ones
        accounts.append(account(f"fca_multi{i:02d}", ids[(i + 6) % 15], [succeeded(cash(
            base + 200 + i, {"usd": 1_000 + i, "eur": -250 - i, "jpy": 12_345 + i, "kwd": 1_234_567 + i},
            {"usd": 900 + i, "jpy": 12_000, "kwd": 1}))]))
    for i in range(4):  # refreshes that fail (a second scripted outcome would succeed on the next refresh)
        accounts.append(account(f"fca_fail{i:02d}", ids[(i + 9) % 15], [FAILED, succeeded(cash(base, {"usd": 1}))]))
    for i in range(3):  # inactive, with a balance from before: recorded, not refreshed
        accounts.append(account(f"fca_inactive{i:02d}", ids[(i + 11) % 15], status="inactive",
                                balance=cash(base - 86_400 - i, {"gbp": 4_200 + i}, {"gbp": 4_000})))
    for i in range(2):
        accounts.append(account(f"fca_disc{i:02d}", ids[(i + 13) % 15], [succeeded(cash(base, {"usd": 1}))],
                                status="disconnected"))
    for i in range(3):
        accounts.append(account(f"fca_noperm{i:02d}", ids[i % 15], [succeeded(cash(base, {"usd": 1}))],
                                permissions=["payment_method"]))
    for i in range(3):  # in cooldown far into the future: skipped, its listed balance recorded
        accounts.append(account(f"fca_cool{i:02d}", ids[(i + 5) % 15], [succeeded(cash(base, {"usd": 1}))],
                                balance=cash(base - 3_600 - i, {"usd": 777 + i}, {"usd": 700}),
                                balance_refresh={"status": "succeeded", "last_attempted_at": base - 3_600,
                                                 "next_refresh_available_at": 4_102_444_800}))
    accounts.append(account("fca_undefined", ids[14], [succeeded(cash(base + 300, {"undefined": 10, "usd": 20},
                                                                      {"usd": 20}))]))
    accounts.append(account("fca_ownerless", ids[2], [succeeded(cash(base + 301, {"chf": 5_500}, {"chf": 5_000}))],
                            permissions=["balances"], subcategory="savings"))
    accounts.append(account("fca_credit_line", ids[4], [succeeded(credit(base + 302, {"usd": -1_000_000}, None))],
                            category="credit", subcategory="line_of_credit"))
    return {"customers": custs, "accounts": accounts}


def kill_fixtures(accounts_count: int, customers_count: int, base: int) -> dict[str, Any]:
    """Accounts whose refreshes give the same balance every time (one scripted outcome, repeated, fixed as_of).

    A run that is killed and run again may refresh an account twice, or await a refresh the killed run started;
    with these fixtures both give exactly the rows a single clean run gives. Some skips and rejects ride along.
    """
    custs = customers(customers_count, "kill")
    ids = [c["id"] for c in custs]
    accounts: list[dict[str, Any]] = []
    for i in range(accounts_count):
        customer = ids[i % customers_count]
        kind = i % 10
        if kind == 7:
            outcome = FAILED
        elif kind in (3, 8):
            outcome = succeeded(credit(base + i, {"usd": -20_000 - i}, {"usd": 20_000 + i}))
        elif kind == 5:
            outcome = succeeded(cash(base + i, {"usd": 3_000 + i, "eur": 400 + i, "undefined": 7}, {"usd": 2_900}))
        else:
            outcome = succeeded(cash(base + i, {"usd": 10_000 + i}, {"usd": 9_000 + i}))
        extra: dict[str, Any] = {}
        if kind in (3, 8):
            extra = {"category": "credit", "subcategory": "credit_card"}
        accounts.append(account(f"fca_k{i:04d}", customer, [outcome], **extra))
    accounts.append(account("fca_k_inactive", ids[0], status="inactive",
                            balance=cash(base - 86_400, {"usd": 123}, {"usd": 100})))
    accounts.append(account("fca_k_noperm", ids[1 % customers_count], [succeeded(cash(base, {"usd": 1}))],
                            permissions=["payment_method"]))
    accounts.append(account("fca_k_cool", ids[2 % customers_count], [succeeded(cash(base, {"usd": 1}))],
                            balance=cash(base - 7_200, {"usd": 555}, {"usd": 500}),
                            balance_refresh={"status": "succeeded", "last_attempted_at": base - 7_200,
                                             "next_refresh_available_at": 4_102_444_800}))
    return {"customers": custs, "accounts": accounts}


def refreshable_account_ids(fixtures: dict[str, Any], now: float) -> set[str]:
    """Accounts of the fixtures that a run must refresh, by Stripe's rules (active, permission, no cooldown)."""
    ids = set()
    for doc in fixtures["accounts"]:
        refresh = doc.get("balance_refresh") or {}
        next_at = refresh.get("next_refresh_available_at")
        cooling = isinstance(next_at, int) and next_at > now
        if doc.get("status", "active") == "active" and "balances" in doc.get("permissions", []) and not cooling \
                and refresh.get("status") != "pending":
            ids.add(doc["id"])
    return ids


# ------------------------------------------------------------------------------------------------- the CLI


def cli_env(api_key: str, api_base: str, warehouse: Path, **extra: str) -> dict[str, str]:
    """The environment of an `fc-balances run`: ours, minus anything that would point it elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    env.update({"STRIPE_API_KEY": api_key, "STRIPE_API_BASE": api_base, "FC_BALANCES_WAREHOUSE": str(warehouse),
                "FC_BALANCES_POLL_INTERVAL": "0.2", "FC_BALANCES_EVENT_GRACE": "3"})
    env.update(extra)
    return env


def run_cli(env: dict[str, str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FC_BALANCES, "run"], env=env, capture_output=True, text=True, timeout=timeout)


def start_cli(env: dict[str, str], log_dir: Path, name: str) -> subprocess.Popen[bytes]:
    """`fc-balances run` in its own process group (so a kill reaches exactly it), output to files."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.out", "wb") as out, open(log_dir / f"{name}.err", "wb") as err:
        return subprocess.Popen([FC_BALANCES, "run"], env=env, stdout=out, stderr=err, start_new_session=True)


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def wait_for_lock_holder(warehouse: Path, pid: int, timeout: float) -> bool:
    """Wait until the warehouse's writer lock file names `pid` (the run holds the warehouse)."""
    deadline = time.monotonic() + timeout
    lock = warehouse / LOCK_FILE
    while time.monotonic() < deadline:
        try:
            if lock.read_text().strip() == str(pid):
                return True
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        time.sleep(0.01)
    return False


# ------------------------------------------------------------------------------------------------- the warehouse


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = connection.execute("select column_name from information_schema.columns where table_name = ? "
                              "order by ordinal_position", [table]).fetchall()
    return [row[0] for row in rows]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def snapshot(warehouse: Path, refresh_run_ids: Iterable[str] | None = None) -> Snapshot:
    """Every contract table's rows without the run-specific columns, sorted; refreshes only of the given runs."""
    result: Snapshot = {}
    with duckdb.connect(str(warehouse / DUCKDB_FILE), read_only=True) as connection:
        for table in CONTRACT_TABLES:
            kept = [c for c in _columns(connection, table) if c not in RUN_SPECIFIC_COLUMNS[table]]
            sql = f"select {_quoted(kept)} from {table}"
            params: list[Any] = []
            if table == "fc_balance_refreshes" and refresh_run_ids is not None:
                sql += " where list_contains(?, run_id)"
                params.append(sorted(refresh_run_ids))
            rows = connection.execute(sql + " order by all", params).fetchall()
            # Lists (fc_accounts.permissions) as tuples, so rows can be compared as sets.
            result[table] = [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows]
    return result


def snapshot_differences(got: Snapshot, want: Snapshot) -> list[str]:
    """One line per table whose rows differ, naming a few rows on each side."""
    problems = []
    for table in CONTRACT_TABLES:
        extra = sorted(set(got[table]) - set(want[table]), key=repr)
        missing = sorted(set(want[table]) - set(got[table]), key=repr)
        if extra or missing or len(got[table]) != len(want[table]):
            problems.append(f"{table}: {len(got[table])} rows vs {len(want[table])} expected; "
                            f"unexpected {extra[:3]}; missing {missing[:3]}")
    return problems


def run_ids(warehouse: Path) -> set[str]:
    """The runs recorded in fc_balance_refreshes; none when a killed run left no file, or no table yet."""
    path = warehouse / DUCKDB_FILE
    if not path.exists():
        return set()
    with duckdb.connect(str(path), read_only=True) as connection:
        exists = connection.execute("select count(*) from information_schema.tables "
                                    "where table_name = 'fc_balance_refreshes'").fetchall()[0][0]
        if not exists:
            return set()
        return {row[0] for row in connection.execute("select distinct run_id from fc_balance_refreshes").fetchall()}


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse / DUCKDB_FILE), read_only=True) as connection:
        return connection.execute(sql, params or []).fetchall()


def duplicate_keys(warehouse: Path) -> dict[str, int]:
    """Keys held by more than one row, per keyed table (all zero in a correct warehouse)."""
    counts = {}
    with duckdb.connect(str(warehouse / DUCKDB_FILE), read_only=True) as connection:
        for table, key in CONTRACT_KEYS.items():
            sql = f"select count(*) from (select 1 from {table} group by {_quoted(key)} having count(*) > 1)"
            counts[table] = connection.execute(sql).fetchall()[0][0]
    return counts


def iceberg_differences(warehouse: Path) -> list[str]:
    """Tables whose current Iceberg rows (all columns, through the catalog) are not exactly the DuckDB rows."""
    from tests.iceberg_tables import iceberg_differences as differences

    return differences(warehouse, tuple(CONTRACT_TABLES))


def unreadable_iceberg_tables(warehouse: Path) -> list[str]:
    """Published tables a reader cannot scan through the catalog (a torn commit would show here)."""
    from tests.iceberg_tables import iceberg_table

    if not (warehouse / "iceberg" / "catalog.db").exists():
        return []
    bad = []
    for table in CONTRACT_TABLES:
        try:
            iceberg_table(warehouse, table)
        except Exception as exc:  # any failure to read is the finding
            bad.append(f"{table}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return bad


def integrity_problems(warehouse: Path) -> list[str]:
    """Everything a healthy warehouse must satisfy after a completed run, as problem lines."""
    problems = []
    try:
        duplicates = duplicate_keys(warehouse)
    except duckdb.Error as exc:
        return [f"DuckDB does not open: {exc}"]
    problems += [f"{table}: {count} duplicated keys" for table, count in duplicates.items() if count]
    problems += iceberg_differences(warehouse)
    problems += [f"unreadable Iceberg table: {name}" for name in unreadable_iceberg_tables(warehouse)]
    problems += warehouse_problems(warehouse)
    return problems


# ------------------------------------------------------------------------------------------------- kill -9 trials


@dataclass(frozen=True)
class KillScenario:
    """Fixtures and settings every kill trial and its clean reference share."""

    fixtures: dict[str, Any]
    sandbox_settings: dict[str, Any]
    env_extra: dict[str, str]

    @classmethod
    def default(cls, accounts_count: int = 80, customers_count: int = 15) -> KillScenario:
        base = int(time.time()) - 3_600
        return cls(
            fixtures=kill_fixtures(accounts_count, customers_count, base),
            # No cooldown: the run after a kill refreshes again whatever the killed run refreshed (same rows).
            sandbox_settings={**SANDBOX_BASE, "refresh_latency": (0.3, 0.3), "refresh_cooldown": 0.0},
            # Small batches: many write transactions during the run, so kills land between and inside them.
            env_extra={"FC_BALANCES_BATCH_SIZE": "8"},
        )

    def sandbox(self) -> Sandbox:
        return start_sandbox(SandboxConfig(**self.sandbox_settings, fixtures=self.fixtures))


@dataclass
class Reference:
    """What a clean run of the scenario leaves, and when (seconds after start) it took and left the warehouse."""

    snapshot: Snapshot
    refresh_rows: dict[str, tuple[Any, ...]]  # account_id -> (outcome, status, error_code)
    lock_taken_after: float
    duration: float


def _refresh_rows(warehouse: Path, run_id: str) -> dict[str, tuple[Any, ...]]:
    rows = query(warehouse, "select account_id, outcome, status, error_code from fc_balance_refreshes "
                            "where run_id = ?", [run_id])
    return {row[0]: row[1:] for row in rows}


def reference_run(scenario: KillScenario, workdir: Path) -> Reference:
    """A clean run on a fresh sandbox: the state every killed-and-rerun warehouse must reach."""
    warehouse = workdir / "reference"
    with scenario.sandbox() as sandbox:
        env = cli_env(sandbox.api_key, sandbox.base_url, warehouse, **scenario.env_extra)
        started = time.monotonic()
        process = start_cli(env, workdir / "logs", "reference")
        held = wait_for_lock_holder(warehouse, process.pid, timeout=120)
        lock_taken_after = time.monotonic() - started
        try:
            code: int | None = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # never leave a hung run behind
            process.wait()
            code = None
        duration = time.monotonic() - started
    if code != 0 or not held:
        errors = (workdir / "logs" / "reference.err").read_text()
        ended = f"hung (killed after {RUN_TIMEOUT:g}s)" if code is None else f"ended with exit {code}"
        raise AssertionError(f"the clean reference run {ended}, warehouse lock seen: {held}; "
                             f"logs in {workdir / 'logs'}: {errors[-2000:]}")
    problems = integrity_problems(warehouse)
    if problems:
        raise AssertionError(f"the clean reference run left a broken warehouse: {problems}")
    (run_id,) = run_ids(warehouse)
    return Reference(snapshot(warehouse), _refresh_rows(warehouse, run_id), lock_taken_after, duration)


@dataclass
class KillTrial:
    delay: float
    killed: bool  # False when the run had already ended at the kill time
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ran_for: float | None = None  # how long the run took when it ended before the kill


def kill_trial(scenario: KillScenario, reference: Reference, workdir: Path, name: str, delay: float) -> KillTrial:
    """Start a run, SIGKILL it `delay` s later, run again normally on the same sandbox; list what is wrong."""
    started = time.monotonic()
    warehouse = workdir / name
    logs = workdir / "logs"
    trial = KillTrial(delay=delay, killed=False)
    with scenario.sandbox() as sandbox:
        env = cli_env(sandbox.api_key, sandbox.base_url, warehouse, **scenario.env_extra)
        launched = time.monotonic()
        process = start_cli(env, logs, f"{name}-killed")
        try:
            process.wait(timeout=delay)
            trial.ran_for = time.monotonic() - launched
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            trial.killed = True
        code = process.wait(timeout=60)
        if not trial.killed and code != 0:
            trial.problems.append(f"the run to be killed failed by itself (exit {code})")
        # What a reader sees right after the crash: every Iceberg table at a whole snapshot, the DuckDB file opening.
        trial.problems += [f"after the kill, unreadable Iceberg table: {name}"
                           for name in unreadable_iceberg_tables(warehouse)]
        try:
            before = run_ids(warehouse)
        except duckdb.Error as exc:
            trial.problems.append(f"after the kill, DuckDB does not open read-only: {exc}")
            before = set()
        rerun = start_cli(env, logs, f"{name}-rerun")
        try:
            code = rerun.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(rerun.pid, signal.SIGKILL)
            rerun.wait()
            code = None
    if code != 0:
        errors = (logs / f"{name}-rerun.err").read_text().strip()[-500:]
        outcome = f"hung (killed after {RUN_TIMEOUT:g}s)" if code is None else f"failed (exit {code})"
        trial.problems.append(f"the run after the kill {outcome}: {errors!r}; logs in {logs}")
        trial.seconds = time.monotonic() - started
        return trial
    new_runs = run_ids(warehouse) - before
    if len(new_runs) != 1:
        trial.problems.append(f"expected one new run_id in fc_balance_refreshes after the rerun, got {len(new_runs)}")
        trial.seconds = time.monotonic() - started
        return trial
    trial.problems += integrity_problems(warehouse)
    trial.problems += snapshot_differences(snapshot(warehouse, new_runs), reference.snapshot)
    # Rows the killed run managed to record are true: each says what the clean run says about that account.
    for killed_run in before:
        for account_id, row in _refresh_rows(warehouse, killed_run).items():
            if reference.refresh_rows.get(account_id) != row:
                trial.problems.append(f"the killed run recorded {account_id} as {row}, "
                                      f"a clean run as {reference.refresh_rows.get(account_id)}")
    trial.seconds = time.monotonic() - started
    return trial


def spread_delays(count: int, low: float, high: float, seed: int) -> list[float]:
    """`count` delays in [low, high], one uniformly random in each of `count` equal slices (stratified)."""
    import random

    rng = random.Random(seed)
    width = (high - low) / count
    return [round(low + width * (k + rng.random()), 3) for k in range(count)]
