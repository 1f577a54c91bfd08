"""Account health in the sandbox: endive account numbers, status_details from fixtures, scheduled lifecycle events."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import API_VERSION, FixtureError
from tests.sandbox.conftest import account, customer, sdk

EVENT = "financial_connections.account."


def _number(status: str, **extra: object) -> dict[str, object]:
    return {"status": status, **extra}


def _now(sandbox) -> int:
    return int(sandbox.now())


def test_the_sdk_version_is_accepted_and_endive_numbers_and_status_details_are_served(sandbox_factory, raw):
    sb = sandbox_factory()
    deactivates = _now(sb) + 10 * 86_400
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account(
        "fca_1", "cus_A", status_details={"active": {"expected_deactivation_date": deactivates}},
        account_numbers=[_number("expired"), _number("pending", identifier_type="tokenized_account_number")])]})
    client = sdk(sb)
    got = client.v1.financial_connections.accounts.retrieve("fca_1")
    assert got.last_response.headers["Stripe-Version"] == stripe.api_version == API_VERSION  # the SDK's, echoed
    assert got.status_details.active.to_dict() == {
        "action": "relink_required", "cause": "access_expired", "expected_deactivation_date": deactivates}
    assert [(n.status, n.identifier_type, n.supported_networks, n.expected_expiry_date)
            for n in got.account_numbers] == [("expired", "account_number", ["ach"], None),
                                              ("pending", "tokenized_account_number", ["ach"], None)]
    older = raw(sb).get("/v1/financial_connections/accounts/fca_1", headers={"Stripe-Version": "2026-07-29.dahlia"})
    assert older.status_code == 200 and older.headers["Stripe-Version"] == "2026-07-29.dahlia"
    # The spec check at teardown (with endive's pending and expired) passes for every response above.


@pytest.mark.off_spec("fca_odd")
def test_an_account_number_status_stripe_adds_later_is_served_as_given(sandbox_factory):
    sb = sandbox_factory()
    sb.load_fixtures({"customers": [customer("cus_A")],
                      "accounts": [account("fca_odd", "cus_A", account_numbers=[_number("frozen")])]})
    got = sdk(sb).v1.financial_connections.accounts.retrieve("fca_odd")
    assert [n.status for n in got.account_numbers] == ["frozen"]


def test_a_schedule_emits_each_lifecycle_event_at_its_virtual_time(sandbox_factory):
    sb = sandbox_factory()
    start = _now(sb)
    first, later = start + 20 * 86_400, start + 12 * 86_400
    numbers = [_number("expired")]
    schedule = [
        {"at": start + 100, "event": "upcoming_deactivation", "expected_deactivation_date": first},
        {"at": start + 200, "event": "expected_deactivation_date_updated", "expected_deactivation_date": later},
        {"at": start + 300, "event": "account_numbers_updated", "account_numbers": numbers},
        {"at": start + 400, "event": "deactivated"},
        {"at": start + 500, "event": "reactivated"},
        {"at": start + 600, "event": "disconnected"},
    ]
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [
        account("fca_1", "cus_A", account_numbers=[_number("transactable")], schedule=schedule)]})
    client = sdk(sb)
    assert client.v1.events.list().data == []
    sb.advance_clock(150)
    fca = client.v1.financial_connections.accounts.retrieve("fca_1")
    assert fca.status_details.active.expected_deactivation_date == first
    sb.advance_clock(500)
    events = list(reversed(client.v1.events.list().data))
    assert [(e.type, e.created) for e in events] == [(EVENT + entry["event"], entry["at"]) for entry in schedule]
    upcoming, updated, numbers_event, deactivated, reactivated, disconnected = events
    assert upcoming.data.object.status_details.active.expected_deactivation_date == first
    assert "previous_attributes" not in upcoming.data.to_dict()  # there were no details before
    assert updated.data.object.status_details.active.expected_deactivation_date == later
    assert updated.data.previous_attributes.to_dict() == {
        "status_details": {"active": {"action": "relink_required", "cause": "access_expired",
                                      "expected_deactivation_date": first}}}
    assert [n.status for n in numbers_event.data.object.account_numbers] == ["expired"]
    assert [n["status"] for n in numbers_event.data.previous_attributes.to_dict()["account_numbers"]] == [
        "transactable"]
    assert deactivated.data.object.status == "inactive"
    assert "status_details" not in deactivated.data.object.to_dict()  # active details describe active accounts
    assert reactivated.data.object.status == "active"
    assert disconnected.data.object.status == "disconnected"
    assert client.v1.financial_connections.accounts.retrieve("fca_1").status == "disconnected"
    assert sb.stats()["scheduled_events"] == 6


def test_scheduled_changes_run_in_time_order_with_refreshes(sandbox_factory):
    sb = sandbox_factory(refresh_latency=(30.0, 30.0))
    start = _now(sb)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account(
        "fca_1", "cus_A", permissions=["balances"],
        schedule=[{"at": start + 10, "event": "deactivated"}, {"at": start + 10, "event": "deactivated"}])]})
    client = sdk(sb)
    client.v1.financial_connections.accounts.refresh("fca_1", {"features": ["balance"]})
    sb.advance_clock(60)  # deactivated at +10, before the refresh completes at +30: the refresh fails
    assert [e.type for e in reversed(client.v1.events.list().data)] == [
        EVENT + "deactivated", EVENT + "refreshed_balance"]
    assert client.v1.financial_connections.accounts.retrieve("fca_1").balance_refresh.status == "failed"
    assert sb.stats()["scheduled_skipped"] == 1  # the second deactivation: already inactive, nothing sent


def test_a_replaced_account_drops_its_old_schedule(sandbox_factory):
    sb = sandbox_factory()
    start = _now(sb)
    sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [
        account("fca_1", "cus_A", schedule=[{"at": start + 10, "event": "disconnected"}])]})
    sb.load_fixtures({"accounts": [account("fca_1", "cus_A")]})
    sb.advance_clock(60)
    client = sdk(sb)
    assert client.v1.events.list().data == []
    assert client.v1.financial_connections.accounts.retrieve("fca_1").status == "active"


@pytest.mark.parametrize(("fields", "message"), [
    ({"schedule": [{"at": 1, "event": "melted"}]}, "unknown event 'melted'"),
    ({"schedule": [{"at": "soon", "event": "deactivated"}]}, "schedule[0].at must be an integer"),
    ({"schedule": [{"at": 1, "event": "upcoming_deactivation"}]}, "expected_deactivation_date' must be an integer"),
    ({"schedule": [{"at": 1, "event": "account_numbers_updated"}]}, "needs 'account_numbers'"),
    ({"schedule": [{"at": 1, "event": "deactivated", "status": "x"}]}, "unknown key 'status'"),
    ({"account_numbers": [{"identifier_type": "account_number"}]}, "non-empty 'status'"),
    ({"status_details": {"inactive": {}}}, "only 'active'"),
])
def test_bad_health_fixtures_are_refused_whole_with_one_line(sandbox_factory, fields, message):
    sb = sandbox_factory()
    with pytest.raises(FixtureError) as refused:
        sb.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A", **fields)]})
    assert message in str(refused.value) and "accounts[0] (fca_1)" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(stripe.InvalidRequestError):
        sdk(sb).v1.financial_connections.accounts.retrieve("fca_1")  # nothing was loaded
