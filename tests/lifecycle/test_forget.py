"""`fc-balances forget` on a real warehouse filled from the sandbox: every row about the subject goes, nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.lifecycle.subjects import read_salt, subject_hash
from stripe_sandbox import SandboxConfig, start_sandbox
from tests.conftest import TEST_SANDBOX_DEFAULTS
from tests.integration.helpers import metadata, run_ingest
from tests.lifecycle.helpers import (
    accounts_of,
    build_warehouse,
    cli,
    copy_warehouse,
    counts,
    file_digests,
    files_naming,
    iceberg_about,
    poll_into_store,
    query,
    store_events_about,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with start_sandbox(SandboxConfig(**{**TEST_SANDBOX_DEFAULTS, "rate_limit": False})) as running:
        running.load_demo(8)
        yield running


@pytest.fixture(scope="module")
def template(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    warehouse = tmp_path_factory.mktemp("template") / "wh"
    build_warehouse(sandbox, warehouse)
    return warehouse


@pytest.fixture
def warehouse(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "wh"
    return copy_warehouse(template, copy)


def busiest_customer(warehouse: Path) -> str:
    """The customer with the most balance rows (so every table holds something about it)."""
    return query(warehouse, "SELECT customer_id FROM fc_balances WHERE customer_id IS NOT NULL "
                            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0]


def test_forget_a_customer_removes_every_row_and_only_those(warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    before = counts(warehouse, customer, accounts)
    held = {table: about for table, (about, _) in before.items() if about}
    # The data has the subject in the contract tables, the refresh log, fc_events and the marts.
    assert {"fc_accounts", "fc_balances", "fc_balance_refreshes", "fc_events", "fc_latest_balances",
            "fc_daily_balances", "fc_customer_liquidity"} <= set(held)
    assert store_events_about(warehouse, customer, accounts) > 0
    assert files_naming(warehouse, [customer, *accounts])  # before: the Iceberg files hold the subject

    done = cli(["forget", "--customer", customer], warehouse)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith(f"fc-balances: {customer}: forgotten (request del_")

    after = counts(warehouse, customer, accounts)
    assert {table: about for table, (about, _) in after.items() if about} == {}
    assert {t: others for t, (_, others) in after.items()} == {t: others for t, (_, others) in before.items()
                                                               if t != "fc_customer_liquidity"} | {
        "fc_customer_liquidity": before["fc_customer_liquidity"][1]}
    assert store_events_about(warehouse, customer, accounts) == 0
    assert all(hits == 0 for hits in iceberg_about(warehouse, customer, accounts).values())

    # Erased, not hidden: no file under the warehouse (data files, manifests and their column bounds, manifest
    # lists, metadata JSON, the catalog, the event store) holds the subject's ids, and each table is left with
    # its one current snapshot (time travel before the forget ends here); a table that held only the subject's rows
    # keeps an empty current snapshot, one never published has none.
    assert files_naming(warehouse, [customer, *accounts]) == []
    ever = {t for t, (about, others) in before.items() if about or others}
    assert {t: len(s) for t, s in snapshot_lists(warehouse).items()} == {
        t: 1 if duckdb_count or t in ever else 0 for t, duckdb_count in query_counts(warehouse).items()}

    # The audit row: a salted hash, never the id, and what was removed per table.
    ((request_id, kind, digest, status, removed, completed),) = query(
        warehouse, "SELECT request_id, subject_type, subject_hash, status, rows_removed, completed_at "
                   "FROM fc_deletions")
    salt = read_salt(warehouse)
    assert salt and (warehouse / ".fc_salt").stat().st_mode & 0o777 == 0o600
    assert (kind, digest, status) == ("customer", subject_hash(salt, customer), "done") and completed
    assert {t: n for t, n in json.loads(removed).items() if n and t != "event_store"} == held
    assert customer not in removed and request_id in line
    duck = (warehouse / "fc_balances.duckdb").read_bytes()
    assert customer.encode() not in duck or _only_in_free_pages(warehouse, customer)

    checked = cli(["check"], warehouse)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def query_counts(warehouse: Path) -> dict[str, int]:
    from pipelines.contract.tables import EXPORTED_TABLES

    return {t: query(warehouse, f'SELECT count(*) FROM "{t}"')[0][0] for t in EXPORTED_TABLES}


def snapshot_lists(warehouse: Path) -> dict[str, list[Any]]:
    from pipelines.contract.tables import EXPORTED_TABLES
    from tests.iceberg_tables import catalog_of

    catalog = catalog_of(warehouse)
    return {table: catalog.load_table(("fc_balances", table)).snapshots() for table in EXPORTED_TABLES}


def _only_in_free_pages(warehouse: Path, customer: str) -> bool:
    """DuckDB may keep deleted bytes in free blocks until they are reused; no table may still return the id."""
    tables = [r[0] for r in query(warehouse, "SELECT table_name FROM duckdb_tables()")]
    for table in tables:
        text_columns = [r[0] for r in query(warehouse, "SELECT column_name FROM duckdb_columns() "
                                                       "WHERE table_name = ? AND data_type = 'VARCHAR'", [table])]
        for column in text_columns:
            if query(warehouse, f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [customer])[0][0]:
                return False
    return True


def test_forget_an_account_leaves_its_customers_other_accounts(warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    assert len(accounts) >= 2
    target, kept = accounts[0], accounts[1:]
    before_kept = query(warehouse, "SELECT count(*) FROM fc_balances WHERE list_contains(?, account_id)", [kept])
    done = cli(["forget", "--account", target], warehouse)
    assert done.returncode == 0, done.stderr
    for table, (about, _) in counts(warehouse, "cus_nobody", [target]).items():
        assert about == 0, table
    assert query(warehouse, "SELECT count(*) FROM fc_balances WHERE list_contains(?, account_id)",
                 [kept]) == before_kept
    assert cli(["check"], warehouse).returncode == 0


def test_twice_unknown_and_bad_ids(warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    assert cli(["forget", "--customer", customer], warehouse).returncode == 0
    again = cli(["forget", "--customer", customer], warehouse)
    assert again.returncode == 0
    assert again.stdout.strip().splitlines() == [
        f"fc-balances: {customer}: already forgotten (request "
        f"{query(warehouse, 'SELECT request_id FROM fc_deletions')[0][0]}); nothing left to delete"]
    assert query(warehouse, "SELECT count(*) FROM fc_deletions") == [(1,)]

    unknown = cli(["forget", "--customer", "cus_NeverSeen123"], warehouse)
    assert unknown.returncode == 0
    assert unknown.stdout.strip().splitlines() == [
        "fc-balances: cus_NeverSeen123: no data about this customer in the warehouse; nothing to delete"]

    before = file_digests(warehouse / "iceberg")
    for bad in (["--customer", "fca_wrongKind"], ["--account", "acct_1"], ["--customer", "cus_x;drop"]):
        refused = cli(["forget", *bad], warehouse)
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert cli(["forget"], warehouse).returncode == 1
    assert file_digests(warehouse / "iceberg") == before
    assert query(warehouse, "SELECT count(*) FROM fc_deletions") == [(1,)]


def test_forgotten_customer_stays_forgotten_in_later_runs_and_events(sandbox: Any, warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    others = {t: o for t, (_, o) in counts(warehouse, customer, accounts).items()}
    assert cli(["forget", "--customer", customer], warehouse).returncode == 0

    sandbox.advance_clock(2 * 86_400)  # past the refresh cooldown: the next run refreshes everyone else
    result = run_ingest(sandbox, warehouse)
    meta = metadata(result, "fc_balances")
    assert meta["skipped_forgotten"] == 1  # the customer, skipped before its accounts are listed
    poll_into_store(sandbox, warehouse)  # the sandbox's events (old ones about the subject too) reach the store
    assert store_events_about(warehouse, customer, accounts) == 0
    after = counts(warehouse, customer, accounts)
    assert all(about == 0 for about, _ in after.values())
    assert after["fc_balances"][1] > others["fc_balances"]  # everyone else got new balances

    # "all" discovery lists accounts unfiltered: the holder's hash still matches.
    result = run_ingest(sandbox, warehouse, discovery="all")
    assert metadata(result, "fc_balances")["skipped_forgotten"] == len(accounts)
    assert all(about == 0 for about, _ in counts(warehouse, customer, accounts).values())
    # Run history: counts only, never the id.
    for event in result.get_asset_materialization_events():
        assert customer not in repr(event.materialization.metadata)


def test_and_disconnect_calls_stripe_for_every_account_of_the_customer(sandbox: Any, warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    accounts = accounts_of(warehouse, customer)
    env = {"STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url}
    done = cli(["forget", "--customer", customer, "--and-disconnect"], warehouse, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"fc-balances: disconnected {len(accounts)} account(s) at Stripe"
    import httpx

    for account_id in accounts:
        got = httpx.get(f"{sandbox.base_url}/v1/financial_connections/accounts/{account_id}",
                        headers={"Authorization": f"Bearer {sandbox.api_key}"}).json()
        assert got["status"] == "disconnected"
    # The disconnected events Stripe sends about them are refused too.
    poll_into_store(sandbox, warehouse)
    assert store_events_about(warehouse, customer, accounts) == 0
    assert sandbox.api_key not in done.stdout + done.stderr


def test_and_disconnect_without_a_key_deletes_and_says_so(warehouse: Path) -> None:
    customer = busiest_customer(warehouse)
    done = cli(["forget", "--customer", customer, "--and-disconnect"], warehouse)
    assert done.returncode == 1
    assert "the data was deleted, nothing was disconnected" in done.stdout + done.stderr
    assert query(warehouse, "SELECT status FROM fc_deletions") == [("done",)]


def test_funds_check_skips_a_forgotten_account(warehouse: Path) -> None:
    import duckdb

    from pipelines.funds.macro import sufficient_funds

    account = query(warehouse, "SELECT account_id FROM fc_latest_balances WHERE available_minor IS NOT NULL "
                               "ORDER BY 1 LIMIT 1")[0][0]
    with duckdb.connect(str(warehouse / "fc_balances.duckdb")) as con:
        assert sufficient_funds(con, account, 1, "usd").basis != "no_balance"
    assert cli(["forget", "--account", account], warehouse).returncode == 0
    with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
        check = sufficient_funds(con, account, 1, "usd")
    assert (check.sufficient, check.basis, check.balance_minor) == (None, "no_balance", None)
