"""The refresh lifecycle: pending, completion by outcome, cooldown, guards, disconnect, and their events."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import account, cash_balance, customer, sdk

REFRESHED = "financial_connections.account.refreshed_balance"
OLD_BALANCE = cash_balance(1_000, as_of=1_764_000_500)


@pytest.fixture
def scripted(sandbox):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [
        account("fca_ok", "cus_A", balance=OLD_BALANCE, refresh_outcomes=[
            {"status": "succeeded", "balance": cash_balance(6_000, 5_000)},
            {"status": "failed"},
        ]),
        account("fca_inactive", "cus_A", status="inactive"),
        account("fca_gone", "cus_A", status="disconnected"),
        account("fca_no_perm", "cus_A", permissions=["payment_method"]),
        account("fca_weird", "cus_A", refresh_outcomes=[{"status": "succeeded", "balance": {
            "as_of": "yesterday", "type": "savings", "current": {"undefined": 10**30, "usd": "12.50"}}}]),
    ]})
    return sandbox


def refresh(sandbox, account_id: str, **options):
    return sdk(sandbox, **options).v1.financial_connections.accounts.refresh(account_id, {"features": ["balance"]})


def test_success_replaces_balance_and_emits_event(scripted):
    client = sdk(scripted)
    pending = refresh(scripted, "fca_ok")
    started = pending.balance_refresh.last_attempted_at
    assert pending.balance_refresh.status == "pending"
    assert pending.balance_refresh.next_refresh_available_at is None
    assert pending.balance.current.to_dict() == {"usd": 1_000}  # unchanged until completion
    scripted.advance_clock(1)  # latency is 0.05 s of sandbox time
    done = client.v1.financial_connections.accounts.retrieve("fca_ok")
    assert done.balance_refresh.status == "succeeded"
    assert done.balance_refresh.last_attempted_at == started
    completed = done.balance.as_of  # scripted balance without as_of gets the completion time
    assert started <= completed <= started + 2
    assert done.balance_refresh.next_refresh_available_at == pytest.approx(completed + 3600, abs=1)
    assert done.balance.current.to_dict() == {"usd": 6_000}
    assert done.balance.cash.available.to_dict() == {"usd": 5_000}

    events = client.v1.events.list({"type": REFRESHED})
    assert len(events.data) == 1
    event = events.data[0]
    assert event.api_version == "2026-10-28.endive"
    assert event.data.object.id == "fca_ok"
    assert event.data.object.balance_refresh.status == "succeeded"
    assert event.data.object.balance.current.to_dict() == {"usd": 6_000}
    previous = event.data.previous_attributes.to_dict()
    assert previous["balance"]["current"] == {"usd": 1_000}
    assert previous["balance_refresh"]["status"] == "pending"
    assert event.request.id.startswith("req_")
    assert event.request.idempotency_key  # the SDK sent one on the POST


def test_failure_keeps_balance_and_last_outcome_repeats(scripted):
    refresh(scripted, "fca_ok")
    scripted.advance_clock(3601)
    refresh(scripted, "fca_ok")
    scripted.advance_clock(3601)
    failed = sdk(scripted).v1.financial_connections.accounts.retrieve("fca_ok")
    assert failed.balance_refresh.status == "failed"
    assert failed.balance.current.to_dict() == {"usd": 6_000}
    refresh(scripted, "fca_ok")
    scripted.advance_clock(3601)
    again = sdk(scripted).v1.financial_connections.accounts.retrieve("fca_ok")
    assert again.balance_refresh.status == "failed"  # the last outcome repeats
    statuses = [e.data.object.balance_refresh.status for e in sdk(scripted).v1.events.list({"type": REFRESHED})]
    assert statuses == ["failed", "failed", "succeeded"]


def test_pending_refresh_answers_200_without_a_second_refresh(sandbox):
    sandbox.update_settings(refresh_latency=(30, 30))
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    first = refresh(sandbox, "fca_1")
    second = refresh(sandbox, "fca_1")
    assert first.balance_refresh.status == second.balance_refresh.status == "pending"
    assert sandbox.stats()["refreshes_started"] == 1


def test_cooldown_blocks_until_the_clock_passes_it(scripted):
    refresh(scripted, "fca_ok")
    scripted.advance_clock(1)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refresh(scripted, "fca_ok")
    assert caught.value.http_status == 400
    assert "next_refresh_available_at" in str(caught.value.user_message)
    scripted.advance_clock(3600)
    assert refresh(scripted, "fca_ok").balance_refresh.status == "pending"


@pytest.mark.parametrize("account_id", ["fca_inactive", "fca_gone"])
def test_inactive_and_disconnected_accounts_cannot_refresh(scripted, account_id):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refresh(scripted, account_id)
    assert caught.value.http_status == 400
    assert caught.value.code == "financial_connections_account_inactive"


def test_missing_balances_permission_is_400_naming_it(scripted):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refresh(scripted, "fca_no_perm")
    assert caught.value.http_status == 400
    assert "balances" in str(caught.value.user_message)


@pytest.mark.off_spec("fca_weird")
def test_odd_balances_are_stored_and_served_verbatim(scripted, raw):
    refresh(scripted, "fca_weird")
    scripted.advance_clock(1)
    served = raw(scripted).get("/v1/financial_connections/accounts/fca_weird").json()["balance"]
    assert served == {"as_of": "yesterday", "type": "savings", "current": {"undefined": 10**30, "usd": "12.50"}}


def test_account_loaded_pending_completes_after_one_latency(sandbox):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account(
        "fca_p", "cus_A", balance_refresh={"status": "pending", "last_attempted_at": 1_764_000_000},
        refresh_outcomes=[{"status": "succeeded", "balance": cash_balance(42, as_of=1_764_000_100)}])]})
    client = sdk(sandbox)
    assert client.v1.financial_connections.accounts.retrieve("fca_p").balance_refresh.status == "pending"
    assert client.v1.events.list().data == []  # loading emits nothing
    sandbox.advance_clock(1)
    done = client.v1.financial_connections.accounts.retrieve("fca_p")
    assert done.balance_refresh.status == "succeeded"
    assert done.balance.to_dict()["as_of"] == 1_764_000_100  # a scripted as_of is kept
    event = client.v1.events.list().data[0]
    assert event.request.id is None


def test_completion_happens_in_the_background_without_requests(sandbox):
    import time

    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    refresh(sandbox, "fca_1")
    deadline = time.monotonic() + 5
    while sandbox.server.state.counters["events_emitted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # reads the counter directly: no request that would process due work itself
    assert sandbox.server.state.counters["events_emitted"] == 1


def test_disconnect_nulls_balance_and_emits_event(scripted):
    client = sdk(scripted)
    gone = client.v1.financial_connections.accounts.disconnect("fca_ok")
    assert gone.status == "disconnected"
    assert gone.balance is None
    event = client.v1.events.list({"type": "financial_connections.account.disconnected"}).data[0]
    assert event.data.object.status == "disconnected"
    assert event.data.previous_attributes.to_dict()["status"] == "active"
    assert event.data.previous_attributes.to_dict()["balance"]["current"] == {"usd": 1_000}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        refresh(scripted, "fca_ok")
    assert caught.value.code == "financial_connections_account_inactive"


def test_generated_outcomes_are_deterministic_per_seed(sandbox_factory):
    def run(seed: int) -> list:
        sb = sandbox_factory(seed=seed, rate_limit=False, refresh_cooldown=0)
        sb.load_fixtures({"customers": [customer("cus_A")],
                          "accounts": [account(f"fca_{i}", "cus_A", balance=cash_balance(50_000, as_of=1_764_000_000))
                                       for i in range(30)]})
        client = sdk(sb)
        results = []
        for round_number in range(2):
            for i in range(30):
                client.v1.financial_connections.accounts.refresh(f"fca_{i}", {"features": ["balance"]})
            sb.advance_clock(1)
            for i in range(30):
                a = client.v1.financial_connections.accounts.retrieve(f"fca_{i}").to_dict()
                results.append((round_number, a["balance_refresh"]["status"], a["balance"]["current"]))
        return results

    first, again, other = run(7), run(7), run(8)
    assert [r[1:] for r in first] == [r[1:] for r in again]
    assert [r[1:] for r in first] != [r[1:] for r in other]
    statuses = [r[1] for r in first]
    assert "failed" in statuses and "succeeded" in statuses
    # A failure keeps the balance; a success drifts it away from 500.00
    assert any(r[2]["usd"] != 50_000 for r in first if r[1] == "succeeded")
