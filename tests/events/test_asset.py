"""The fc_events asset, materialized for real against a DuckDB warehouse and Parquet in tmp_path."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from assets.events import fc_events
from pipelines.events import EVENT_STORE_RELATIVE, EventStore
from pipelines.resources import WarehouseResource
from tests.events.helpers import SECRET, T0, account, event, published_rows, query, signed
from tests.events.receiver import start_receiver


def materialize(warehouse: Path) -> dg.ExecuteInProcessResult:
    # No Stripe resource at all: applying events never calls the API (no refresh, no retrieve).
    return dg.materialize(
        [fc_events],
        resources={"warehouse": WarehouseResource(directory=str(warehouse))},
        instance=dg.DagsterInstance.ephemeral(),
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    # fc_accounts / fc_balances get materializations of their own when the events changed them
    (mat,) = [e.materialization for e in result.get_asset_materialization_events()
              if e.materialization.asset_key == dg.AssetKey("fc_events")]
    return {key: getattr(value, "value", value) for key, value in mat.metadata.items()}


def store_of(warehouse: Path) -> EventStore:
    return EventStore(warehouse / EVENT_STORE_RELATIVE)


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


CASH = {"as_of": T0 + 90, "type": "cash", "current": {"usd": 6000, "jpy": 1234}, "cash": {"available": {"usd": 5000}}}


def test_refreshed_balance_event_lands_the_balance_without_a_refresh(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    received = time.time()
    with store_of(warehouse) as store:
        assert store.add(event("evt_r1", "refreshed_balance", T0 + 100,
                               account(balance=CASH, refresh_status="succeeded")), received, "webhook")
    result = materialize(warehouse)
    assert result.success

    balances = query(warehouse, "SELECT account_id, customer_id, balance_type, currency, as_of, current_minor, "
                                "available_minor, used_minor, \"current\", available, fetched_at "
                                "FROM fc_balances ORDER BY currency")
    fetched = query(warehouse, "SELECT received_at FROM fc_events")[0][0]
    assert balances == [
        ("fca_1", "cus_A", "cash", "jpy", utc(T0 + 90), 1234, None, None, Decimal("1234.0000"), None, fetched),
        ("fca_1", "cus_A", "cash", "usd", utc(T0 + 90), 6000, 5000, None, Decimal("60.0000"), Decimal("50.0000"),
         fetched),
    ]
    assert abs(fetched.timestamp() - received) < 0.001  # fetched_at is when we received the event
    accounts = query(warehouse, "SELECT account_id, status, balance_refresh_status, observed_at FROM fc_accounts")
    assert accounts == [("fca_1", "active", "succeeded", utc(T0 + 100))]
    events = query(warehouse, "SELECT event_id, type, created, account_id FROM fc_events")
    assert events == [("evt_r1", "financial_connections.account.refreshed_balance", utc(T0 + 100), "fca_1")]
    meta = metadata(result)
    assert meta["balances_inserted"] == 2
    assert meta["fc_events_inserted"] == 1
    assert meta["dagster/row_count"] == 1
    # The tables the events changed are recorded as materialized too, with what this run wrote into them.
    also = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key != dg.AssetKey("fc_events")}
    assert sorted(also) == ["fc_accounts", "fc_balances"]
    assert also["fc_balances"]["rows_written_this_run"].value == 2
    assert also["fc_accounts"]["rows_written_this_run"].value == 1


def test_status_events_update_fc_accounts_and_late_events_do_not_win(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with store_of(warehouse) as store:
        store.add(event("evt_c", "created", T0 + 10, account(status="active")), time.time(), "webhook")
    materialize(warehouse)
    assert query(warehouse, "SELECT status FROM fc_accounts") == [("active",)]

    expected = []
    for index, (kind, status) in enumerate([("deactivated", "inactive"), ("reactivated", "active"),
                                            ("disconnected", "disconnected")]):
        created = T0 + 200 + index * 100
        with store_of(warehouse) as store:
            store.add(event(f"evt_{kind}", kind, created, account(status=status)), time.time(), "webhook")
        materialize(warehouse)
        row = query(warehouse, "SELECT status, observed_at FROM fc_accounts WHERE account_id = 'fca_1'")
        assert row == [(status, utc(created))], kind
        expected.append(status)

    # A re-delivered (older) deactivated event arriving last must not undo the disconnect.
    with store_of(warehouse) as store:
        store.add(event("evt_old_deactivated", "deactivated", T0 + 150, account(status="inactive")),
                  time.time(), "events_api")
    materialize(warehouse)
    assert query(warehouse, "SELECT status, observed_at FROM fc_accounts") == [("disconnected", utc(T0 + 400))]
    assert query(warehouse, "SELECT count(*) FROM fc_events") == [(5,)]


def test_events_in_one_batch_apply_in_time_order(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with store_of(warehouse) as store:
        # Stored newest first (as an events API page is): the drain must still end on the newest state.
        store.add(event("evt_b", "reactivated", T0 + 300, account(status="active")), time.time(), "events_api")
        store.add(event("evt_a", "deactivated", T0 + 200, account(status="inactive")), time.time(), "events_api")
    materialize(warehouse)
    assert query(warehouse, "SELECT status FROM fc_accounts") == [("active",)]


def test_rematerializing_adds_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with store_of(warehouse) as store:
        store.add(event("evt_1", "refreshed_balance", T0 + 100, account(balance=CASH)), time.time(), "webhook")
        store.add(event("evt_2", "disconnected", T0 + 200, account(status="disconnected")), time.time(), "webhook")
    first = metadata(materialize(warehouse))
    tables = ("fc_events", "fc_accounts", "fc_balances", "fc_rejected_balances")
    counts = {t: query(warehouse, f"SELECT count(*) FROM {t}")[0][0] for t in tables}
    assert counts == {"fc_events": 2, "fc_accounts": 1, "fc_balances": 2, "fc_rejected_balances": 0}
    assert first["events_drained"] == 2

    # The same events again, through the other channel: already stored, nothing new.
    with store_of(warehouse) as store:
        assert not store.add(event("evt_1", "refreshed_balance", T0 + 100, account(balance=CASH)),
                             time.time(), "events_api")
    second = metadata(materialize(warehouse))
    assert {t: query(warehouse, f"SELECT count(*) FROM {t}")[0][0] for t in tables} == counts
    assert second["events_drained"] == 0
    assert second["fc_events_inserted"] == 0


def test_a_drain_interrupted_before_mark_loaded_repeats_harmlessly(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    bad_currency = {"as_of": T0 + 90, "type": "cash", "current": {"undefined": 1}, "cash": None}
    with store_of(warehouse) as store:
        store.add(event("evt_1", "refreshed_balance", T0 + 100, account(balance=CASH)), time.time(), "webhook")
        store.add(event("evt_2", "refreshed_balance", T0 + 110, account("fca_2", balance=bad_currency)),
                  time.time(), "webhook")
    materialize(warehouse)
    tables = ("fc_events", "fc_accounts", "fc_balances", "fc_rejected_balances")
    before = {t: query(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    assert len(before["fc_rejected_balances"]) == 1
    # As if the run died after the DuckDB commit and before the store was updated.
    import sqlite3
    with sqlite3.connect(warehouse / EVENT_STORE_RELATIVE) as con:
        con.execute("UPDATE stored_events SET loaded_at = NULL")
    assert metadata(materialize(warehouse))["events_drained"] == 2
    assert {t: query(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in tables} == before


def test_iceberg_matches_duckdb(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    with store_of(warehouse) as store:
        store.add(event("evt_1", "refreshed_balance", T0 + 100, account(balance=CASH)), time.time(), "webhook")
        store.add(event("evt_2", "refreshed_balance", T0 + 100, account("fca_2", customer="cus_B", balance={
            "as_of": T0 + 95, "type": "credit", "current": {"eur": -50000}, "credit": {"used": {"eur": -50000}}})),
            time.time(), "events_api")
    materialize(warehouse)
    columns = "event_id, type, created, account_id, received_at, payload"
    assert published_rows(warehouse, "fc_events", columns, "event_id") == query(
        warehouse, f"SELECT {columns} FROM fc_events ORDER BY event_id")
    balance_columns = "account_id, currency, as_of, current_minor, used_minor, \"current\", used"
    assert published_rows(warehouse, "fc_balances", balance_columns, "account_id, currency") == query(
        warehouse, f"SELECT {balance_columns} FROM fc_balances ORDER BY account_id, currency")
    assert len(published_rows(warehouse, "fc_accounts", "account_id", "account_id")) == 2


@pytest.mark.timeout(120)
def test_webhook_to_warehouse_keeps_no_personal_data(tmp_path: Path) -> None:
    """Deliveries through the real receiver, including a customer event carrying an email, then a drain."""
    warehouse = tmp_path / "wh"
    handle = start_receiver(warehouse / EVENT_STORE_RELATIVE, SECRET, port=0)
    try:
        customer = {"id": "evt_cus", "object": "event", "type": "customer.created", "created": T0,
                    "data": {"object": {"id": "cus_A", "object": "customer", "email": "ann@example.com",
                                        "name": "Ann Example"}}}
        for payload in (customer, event("evt_1", "refreshed_balance", T0 + 100, account(balance=CASH))):
            body, headers = signed(payload)
            assert httpx.post(handle.webhook_url, content=body, headers=headers).status_code == 200
    finally:
        handle.stop()
    materialize(warehouse)
    assert query(warehouse, "SELECT event_id FROM fc_events") == [("evt_1",)]
    for table in ("fc_events", "fc_accounts", "fc_balances"):
        rows = query(warehouse, f"SELECT * FROM {table}")
        assert rows and "ann@example.com" not in repr(rows) and "Ann Example" not in repr(rows)
        parquet = published_rows(warehouse, table, "*", "1")
        assert parquet and "ann@example.com" not in repr(parquet)
    for path in warehouse.rglob("*"):
        if path.is_file():
            assert b"ann@example.com" not in path.read_bytes(), path
