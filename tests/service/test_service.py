"""The funds service over real HTTP on 127.0.0.1: the sandbox as Stripe, real DuckDB and SQLite files, no mocks."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from assets.events import fc_events
from pipelines.contract.check import check_warehouse
from pipelines.events import EVENT_STORE_RELATIVE
from pipelines.funds.service import CHECKS_PATH, parse_tokens, token_matches
from pipelines.resources import WarehouseResource
from tests.events.helpers import SECRET, event, published_rows, query, signed
from tests.events.helpers import account as event_account
from tests.policy.helpers import account, cash, seed_warehouse
from tests.service.helpers import OTHER_TOKEN, TOKEN, ServiceHandle, config, start

HOUR = 3600


def refresh_requests(sandbox: Any) -> int:
    return sum(n for endpoint, n in sandbox.stats()["requests"].items() if endpoint.endswith("/refresh"))


def all_requests(sandbox: Any) -> int:
    return sum(sandbox.stats()["requests"].values())


def stored_decisions(warehouse: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(warehouse / EVENT_STORE_RELATIVE) as con:
        return con.execute("SELECT decision_id, account_id FROM funds_decisions ORDER BY seq").fetchall()


@pytest.fixture
def world(sandbox_factory: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    now = time.time()
    accounts = [
        account("fca_stale", as_of=now - 3 * HOUR, available=1_000),
        account("fca_fresh", as_of=now - 600, available=7_000),
        account("fca_other", customer="cus_B", as_of=now - 600, available=3_000),
        account("fca_noperm", as_of=None, permissions=["payment_method"]),
        *(account(f"fca_old{n}", as_of=now - 5 * HOUR, available=500) for n in range(3)),
    ]
    sandbox = sandbox_factory(refresh_latency=(0.3, 0.3))
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000},
                                         {"id": "cus_B", "created": 1_764_000_000}], "accounts": accounts})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, accounts)
    return {"sandbox": sandbox, "warehouse": warehouse, "now": now}


@pytest.fixture
def service(world: dict[str, Any]) -> Iterator[ServiceHandle]:
    with start(config(world["warehouse"], world["sandbox"], tokens=(TOKEN, OTHER_TOKEN),
                      webhook_secret=SECRET)) as handle:
        yield handle


def test_fresh_answer_is_kept_and_read_back_after_a_restart(world: dict[str, Any], service: ServiceHandle) -> None:
    before = all_requests(world["sandbox"])
    answers = [service.check(account="fca_fresh", amount=amount, currency="usd") for amount in (7_000, 7_001)]
    assert [a.status_code for a in answers] == [200, 200]
    first, second = (a.json() for a in answers)
    assert (first["sufficient"], second["sufficient"]) == (True, False)
    assert first["basis"] == "available" and first["balance_minor"] == 7_000
    assert first["refreshed"] is False and first["refresh_outcome"] == "not_needed"
    assert first["id"].startswith("fchk_") and first["id"] != second["id"]
    assert abs(first["created"] - time.time()) < 60 and first["max_age"] == "1h"
    assert all_requests(world["sandbox"]) == before  # fresh: Stripe is not asked
    # Memory answered: the warehouse file was read once, when the service started, not once per request.
    assert service.service.checker.memory.warehouse_reads == 1
    assert service.get(first["id"]).json() == first
    assert [row[0] for row in stored_decisions(world["warehouse"])] == [first["id"], second["id"]]
    service.stop()
    with start(config(world["warehouse"], world["sandbox"])) as again:
        assert again.get(first["id"]).status_code == 200
        assert again.get(first["id"]).json() == first
        assert again.get(second["id"]).json() == second


def test_auth_every_v1_route_needs_a_valid_token(service: ServiceHandle) -> None:
    body = {"account": "fca_fresh", "amount": 1, "currency": "usd"}
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        answer = httpx.post(service.url + CHECKS_PATH, json=body, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["error"]["message"] and TOKEN not in answer.text
        assert httpx.get(service.url + CHECKS_PATH + "/fchk_" + "0" * 24, headers=headers).status_code == 401
    # Both tokens of a rotation are accepted; /healthz needs none.
    assert service.check(token=TOKEN, **body).status_code == 200
    assert service.check(token=OTHER_TOKEN, **body).status_code == 200
    assert httpx.get(service.url + "/healthz").status_code == 200


def test_token_matching_compares_every_token() -> None:
    tokens = parse_tokens(f" {TOKEN} , {OTHER_TOKEN} ")
    assert tokens == (TOKEN, OTHER_TOKEN)
    assert token_matches(f"Bearer {OTHER_TOKEN}", tokens) and token_matches(f"bearer {TOKEN}", tokens)
    assert not token_matches(f"Bearer {TOKEN[:-1]}", tokens) and not token_matches(None, tokens)
    assert not token_matches(f"Bearer {TOKEN}é", tokens)
    for bad in ("", " , ", "short"):
        with pytest.raises(ValueError, match="FC_BALANCES_SERVICE_TOKEN") as caught:
            parse_tokens(bad)
        assert bad.strip(" ,") == "" or bad not in str(caught.value)


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "JSON object"),
    (b"[1, 2]", "JSON object"),
    (b'{"amount": 5, "currency": "usd"}', "missing field 'account'"),
    (b'{"account": "fca_fresh", "currency": "usd"}', "missing field 'amount'"),
    (b'{"account": "fca_fresh", "amount": 5}', "missing field 'currency'"),
    (b'{"account": "fca_fresh", "amount": -5, "currency": "usd"}', "negative"),
    (b'{"account": "fca_fresh", "amount": 12.5, "currency": "usd"}', "whole number"),
    (b'{"account": "fca_fresh", "amount": "5000", "currency": "usd"}', "whole number"),
    (b'{"account": "fca_fresh", "amount": true, "currency": "usd"}', "whole number"),
    (b'{"account": "fca_fresh", "amount": 5, "currency": "usdx"}', "ISO 4217"),
    (b'{"account": "fca_fresh", "amount": 5, "currency": "usd", "max_age": "soon"}', "max age"),
    (b'{"account": "fca_fresh", "amount": 5, "currency": "usd", "extra": 1}', "unknown field"),
    (b'{"account": "acct_1", "amount": 5, "currency": "usd"}', "fca_"),
])
def test_bad_requests_are_400_with_one_sentence(world: dict[str, Any], service: ServiceHandle, body: bytes,
                                                words: str) -> None:
    answer = httpx.post(service.url + CHECKS_PATH, content=body,
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert words in message and "\n" not in message and "Traceback" not in answer.text
    assert stored_decisions(world["warehouse"]) == []


def test_unknown_account_and_unknown_decision_are_404(world: dict[str, Any], service: ServiceHandle) -> None:
    answer = service.check(account="fca_missing", amount=5, currency="usd")
    assert answer.status_code == 404 and "unknown account fca_missing" in answer.json()["error"]["message"]
    assert service.get("fchk_" + "0" * 24).status_code == 404
    assert service.get("not-an-id").status_code == 404
    assert httpx.get(service.url + "/v1/nothing", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    assert stored_decisions(world["warehouse"]) == []


def test_stripe_down_is_503_with_the_age_of_the_newest_balance(world: dict[str, Any], service: ServiceHandle) -> None:
    world["sandbox"].stop()
    answer = service.check(account="fca_stale", amount=500, currency="usd")
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "Stripe is unavailable" in message and "fca_stale" in message
    assert "3.0" in message and "h old" in message  # the seeded balance is 3 hours old: never passed off as fresh
    assert stored_decisions(world["warehouse"]) == []
    # A fresh account still answers without Stripe.
    assert service.check(account="fca_fresh", amount=500, currency="usd").json()["sufficient"] is True


def test_a_stale_check_refreshes_and_its_decision_lands_in_fc_funds_decisions(world: dict[str, Any],
                                                                               service: ServiceHandle) -> None:
    warehouse = world["warehouse"]
    stale = service.check(account="fca_stale", amount=5_000, currency="usd", max_age="1h").json()
    assert (stale["refreshed"], stale["refresh_outcome"], stale["balance_minor"]) == (True, "succeeded", 9_000)
    assert stale["sufficient"] is True and stale["staleness_hours"] < 0.1
    assert refresh_requests(world["sandbox"]) == 1
    again = service.check(account="fca_stale", amount=5_000, currency="usd").json()
    assert again["refresh_outcome"] == "not_needed" and refresh_requests(world["sandbox"]) == 1
    noperm = service.check(account="fca_noperm", amount=1, currency="usd").json()
    assert (noperm["basis"], noperm["refresh_outcome"]) == ("no_balance", "skipped_no_permission")
    dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                   instance=dg.DagsterInstance.ephemeral())
    rows = query(warehouse, "SELECT id, account_id, customer_id, amount_minor, currency, sufficient, basis, "
                            "balance_minor, epoch(as_of), refreshed, refresh_outcome, max_age_seconds "
                            "FROM fc_funds_decisions ORDER BY created")
    expected = [(d["id"], d["account"], "cus_A", d["amount"], d["currency"], d["sufficient"], d["basis"],
                 d["balance_minor"], d["as_of"] and pytest.approx(_epoch(d["as_of"])), d["refreshed"],
                 d["refresh_outcome"], 3600.0) for d in (stale, again, noperm)]
    assert rows == expected
    # The refreshed balance landed too, and a second landing adds nothing.
    assert query(warehouse, "SELECT max(available_minor) FROM fc_balances WHERE account_id = 'fca_stale'") == [(9_000,)]
    dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                   instance=dg.DagsterInstance.ephemeral())
    assert query(warehouse, "SELECT count(*) FROM fc_funds_decisions") == [(3,)]
    # Published like the other tables: the contract check finds its Iceberg rows equal to DuckDB's.
    assert check_warehouse(warehouse) == []
    assert len(published_rows(warehouse, "fc_funds_decisions", "id", "id")) == 3
    # The next check sees the balance the job landed in the warehouse (the file changed, so memory read it).
    assert service.check(account="fca_stale", amount=9_000, currency="usd").json()["sufficient"] is True


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_twenty_concurrent_stale_checks_share_one_refresh(world: dict[str, Any], service: ServiceHandle) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: service.check(account="fca_stale", amount=100 + n, currency="usd"),
                                range(20)))
    wall = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 20
    bodies = [a.json() for a in answers]
    assert refresh_requests(world["sandbox"]) == 1
    assert service.service.checker.refreshes_started == 1
    assert {b["balance_minor"] for b in bodies} == {9_000}
    assert {b["refresh_outcome"] for b in bodies} <= {"succeeded", "not_needed"}
    assert len({b["id"] for b in bodies}) == 20 and len(stored_decisions(world["warehouse"])) == 20
    assert wall > 0  # the wall time is the bench's figure, not a test's


def test_every_request_to_stripe_goes_through_the_one_limiter_at_the_reserve(world: dict[str, Any],
                                                                             service: ServiceHandle) -> None:
    checker = service.service.checker
    client = checker._client
    assert client is not None and (client.limiter.global_rps, client.limiter.endpoint_rps) == (2.0, 2.0)
    before = all_requests(world["sandbox"])
    accounts = ["fca_old0", "fca_old1", "fca_old2", "fca_stale"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: service.check(account=accounts[n % 4], amount=1, currency="usd"), range(8)))
    assert {a.json()["refresh_outcome"] for a in answers} <= {"succeeded", "not_needed"}
    assert refresh_requests(world["sandbox"]) == 4 and checker.refreshes_started == 4
    # The same client (one limiter) sent every request the sandbox saw: no per-request client, no bypass.
    assert checker._client is client and client.stats.total == all_requests(world["sandbox"]) - before


def test_webhooks_on_the_same_port_feed_the_next_check(world: dict[str, Any], service: ServiceHandle) -> None:
    now = int(time.time())
    obj = event_account("fca_stale", balance=cash(4_200, now - 60), refresh_status="succeeded")
    body, headers = signed(event("evt_serve1", "refreshed_balance", now - 50, obj))
    delivered = httpx.post(service.url + "/stripe/webhooks", content=body, headers=headers)
    assert delivered.status_code == 200 and delivered.json()["stored"] is True
    forged, forged_headers = signed(event("evt_serve2", "refreshed_balance", now, obj), secret="whsec_other")
    assert httpx.post(service.url + "/stripe/webhooks", content=forged, headers=forged_headers).status_code == 400
    answer = service.check(account="fca_stale", amount=4_000, currency="usd").json()
    assert (answer["sufficient"], answer["balance_minor"], answer["refresh_outcome"]) == (True, 4_200, "not_needed")
    assert refresh_requests(world["sandbox"]) == 0


def test_forget_erases_a_subjects_decisions(world: dict[str, Any], service: ServiceHandle) -> None:
    from tests.policy.helpers import fc_balances_cli

    warehouse = world["warehouse"]
    mine = service.check(account="fca_fresh", amount=5, currency="usd").json()
    theirs = service.check(account="fca_other", amount=5, currency="usd").json()
    dg.materialize([fc_events], resources={"warehouse": WarehouseResource(directory=str(warehouse))},
                   instance=dg.DagsterInstance.ephemeral())
    late = service.check(account="fca_fresh", amount=6, currency="usd").json()  # not landed yet
    done = fc_balances_cli(["forget", "--customer", "cus_A"], {"FC_BALANCES_WAREHOUSE": str(warehouse)})
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in stored_decisions(warehouse)] == [theirs["id"]]
    assert query(warehouse, "SELECT id FROM fc_funds_decisions") == [(theirs["id"],)]
    assert published_rows(warehouse, "fc_funds_decisions", "id", "id") == [(theirs["id"],)]
    assert service.get(mine["id"]).status_code == 404 and service.get(late["id"]).status_code == 404
    assert service.get(theirs["id"]).json() == theirs
    # Forgotten stays forgotten: the service says nothing about the account and keeps nothing.
    assert service.check(account="fca_fresh", amount=5, currency="usd").status_code == 404
    assert len(stored_decisions(warehouse)) == 1


def test_healthz_reports_counts(service: ServiceHandle) -> None:
    service.check(account="fca_fresh", amount=5, currency="usd")
    service.check(account="fca_fresh", amount=-5, currency="usd")
    health = httpx.get(service.url + "/healthz").json()
    assert (health["status"], health["answered"], health["refused"]) == ("ok", 1, 1)
    assert "webhooks" in health and json.dumps(health).count("fca_") == 0


def test_without_a_warehouse_yet_it_answers_from_stripe_and_the_event_store(
        sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    sandbox = sandbox_factory()
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}],
                           "accounts": [account("fca_new", as_of=None)]})
    warehouse = tmp_path / "empty"
    with start(config(warehouse, sandbox)) as handle:
        first = handle.check(account="fca_new", amount=5_000, currency="usd").json()
        assert (first["refreshed"], first["balance_minor"], first["sufficient"]) == (True, 9_000, True)
        again = handle.check(account="fca_new", amount=5_000, currency="usd").json()
        assert again["refresh_outcome"] == "not_needed" and refresh_requests(sandbox) == 1
        assert handle.service.checker.memory.warehouse_reads == 0
    assert not (warehouse / "fc_balances.duckdb").exists()  # the service never creates or writes the warehouse
