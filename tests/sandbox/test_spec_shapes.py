"""What an SDK user sees as on Stripe: fields left out rather than null, expand, subscribe/unsubscribe, owners,
and every documented parameter accepted."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import account, cash_balance, customer, sdk

CREDIT = {"as_of": 1_764_000_000, "type": "credit", "current": {"usd": -5_000}, "credit": {"used": {"usd": -5_000}}}
ONLY_CURRENT = {"as_of": 1_764_000_000, "type": "cash", "current": {"usd": 700}}


@pytest.fixture
def loaded(sandbox):
    sandbox.load_fixtures({
        "customers": [customer("cus_A", name="Ada Lovelace"), customer("cus_B")],
        "accounts": [
            account("fca_cash", "cus_A", balance=cash_balance(1_000, 900, as_of=1_764_000_100),
                    permissions=["balances", "ownership", "transactions"]),
            account("fca_credit", "cus_A", category="credit", subcategory="credit_card", balance=CREDIT),
            account("fca_current", "cus_B", balance=ONLY_CURRENT),
            account("fca_off", "cus_B", status="inactive"),
            account("fca_owned", "cus_B", permissions=["ownership"], owners=[
                {"name": "Grace Hopper", "email": "grace@example.com"}, {"name": "Alan Turing"},
                {"name": "Edsger Dijkstra", "raw_address": "1 Main St"}]),
            {"id": "fca_platform", "account_holder": {"type": "account", "account": "acct_1"},
             "institution_name": "StripeBank", "category": "cash", "subcategory": "checking"},
        ],
    })
    return sandbox


def test_fields_stripe_leaves_out_raise_attribute_error_as_on_stripe(loaded):
    accounts = sdk(loaded).v1.financial_connections.accounts
    cash, credit = accounts.retrieve("fca_cash"), accounts.retrieve("fca_credit")
    with pytest.raises(AttributeError):
        _ = cash.balance.credit
    with pytest.raises(AttributeError):
        _ = credit.balance.cash
    with pytest.raises(AttributeError):
        _ = cash.account_holder.account
    with pytest.raises(AttributeError):
        _ = cash.account_holder.customer_account
    with pytest.raises(AttributeError):
        _ = accounts.retrieve("fca_off").status_details  # no invented {"inactive": ...} shape
    assert credit.balance.credit.used.to_dict() == {"usd": -5_000}
    only_current = accounts.retrieve("fca_current").balance
    assert only_current.cash.available is None  # the hash named by type is there; the amount is unknown
    platform = accounts.retrieve("fca_platform").account_holder.to_dict()
    assert platform == {"account": "acct_1", "type": "account"}
    person = sdk(loaded).v1.customers.retrieve("cus_A")
    with pytest.raises(AttributeError):
        _ = person.business_name


def test_errors_leave_out_code_param_and_doc_url_when_they_do_not_apply(loaded, raw):
    unauthenticated = raw(loaded, key="sk_test_wrong").get("/v1/customers").json()["error"]
    assert set(unauthenticated) == {"message", "request_log_url", "type"}
    missing = raw(loaded).get("/v1/customers/cus_nope").json()["error"]
    assert set(missing) == {"code", "doc_url", "message", "param", "request_log_url", "type"}


def test_both_cursors_are_refused_with_stripes_message(loaded, raw):
    response = raw(loaded).get("/v1/events", params={"starting_after": "evt_a", "ending_before": "evt_b"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == ("Received both starting_after and ending_before parameters. "
                                                    "Please pass in only one.")


def test_expand_account_holder_customer_gives_a_customer_object(loaded):
    client = sdk(loaded)
    fetched = client.v1.financial_connections.accounts.retrieve("fca_cash",
                                                                {"expand": ["account_holder.customer"]})
    assert isinstance(fetched.account_holder.customer, stripe.Customer)
    assert fetched.account_holder.customer.name == "Ada Lovelace"
    listed = client.v1.financial_connections.accounts.list(
        {"account_holder": {"customer": "cus_A"}, "expand": ["data.account_holder.customer"]})
    assert [type(a.account_holder.customer) for a in listed.data] == [stripe.Customer, stripe.Customer]
    plain = client.v1.financial_connections.accounts.retrieve("fca_cash")
    assert plain.account_holder.customer == "cus_A"  # stored objects are not changed by an expansion
    deep = client.v1.financial_connections.accounts.retrieve(
        "fca_cash", {"expand": ["account_holder.customer.tax", "balance", "status_details"]})
    assert deep.account_holder.customer.tax.automatic_tax == "unrecognized_location"
    assert "status_details" not in deep.to_dict()
    platform = client.v1.financial_connections.accounts.retrieve("fca_platform",
                                                                 {"expand": ["account_holder.account"]})
    assert isinstance(platform.account_holder.account, stripe.Account)


@pytest.mark.parametrize(("path", "expand", "shown"), [
    ("/v1/financial_connections/accounts/fca_cash", "institution_name", "institution_name"),
    ("/v1/financial_connections/accounts/fca_cash", "account_holder.customer.nothing",
     "account_holder.customer.nothing"),
    ("/v1/financial_connections/accounts", "account_holder.customer", "account_holder"),
    ("/v1/customers/cus_A", "email", "email"),
    ("/v1/events", "data.object", "data.object"),
])
def test_expanding_what_the_spec_does_not_allow_is_a_400(loaded, raw, path, expand, shown):
    response = raw(loaded).get(path, params={"expand[]": expand})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"This property cannot be expanded ({shown})."


def test_subscribe_and_unsubscribe_transactions_with_the_sdk(loaded):
    client = sdk(loaded)
    accounts = client.v1.financial_connections.accounts
    subscribed = accounts.subscribe("fca_cash", {"features": ["transactions"]})
    assert subscribed.subscriptions == ["transactions"]
    assert subscribed.transaction_refresh.status == "pending"
    assert subscribed.transaction_refresh.id.startswith("fctxnref_")
    again = accounts.subscribe("fca_cash", {"features": ["transactions"]})
    assert again.transaction_refresh.id == subscribed.transaction_refresh.id  # no second refresh
    loaded.advance_clock(1)
    done = accounts.retrieve("fca_cash")
    assert done.transaction_refresh.status == "succeeded"
    assert done.transaction_refresh.next_refresh_available_at is not None
    event = client.v1.events.list({"type": "financial_connections.account.refreshed_transactions"}).data[0]
    assert event.data.object.transaction_refresh.status == "succeeded"
    assert event.data.previous_attributes.transaction_refresh.status == "pending"
    assert accounts.unsubscribe("fca_cash", {"features": ["transactions"]}).subscriptions == []
    assert accounts.retrieve("fca_cash").subscriptions == []


@pytest.mark.parametrize(("account_id", "features", "status", "code", "param"), [
    ("fca_cash", ["balance"], 400, "parameter_invalid", "features[0]"),
    ("fca_cash", None, 400, "parameter_missing", "features"),
    ("fca_credit", ["transactions"], 400, "financial_connections_missing_permission", "features"),
    ("fca_off", ["transactions"], 400, "financial_connections_account_inactive", None),
    ("fca_nope", ["transactions"], 404, "resource_missing", "id"),
])
def test_subscribe_errors(loaded, raw, account_id, features, status, code, param):
    data = {"features[]": features} if features else {}
    response = raw(loaded).post(f"/v1/financial_connections/accounts/{account_id}/subscribe", data=data)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error.get("param") == param
    unsubscribe = raw(loaded).post(f"/v1/financial_connections/accounts/{account_id}/unsubscribe",
                                   data={"features[]": "ownership"})
    assert unsubscribe.status_code == 400  # parameters are checked before the account is looked up
    assert unsubscribe.json()["error"]["param"] == "features[0]"


def test_ownership_refresh_completes_and_owners_list_pages(loaded):
    client = sdk(loaded)
    accounts = client.v1.financial_connections.accounts
    started = accounts.refresh("fca_owned", {"features": ["ownership"]})
    assert started.ownership is None and started.ownership_refresh.status == "pending"
    loaded.advance_clock(1)
    done = accounts.retrieve("fca_owned")
    assert done.ownership_refresh.status == "succeeded"
    assert done.ownership.startswith("fcaowns_")
    event = client.v1.events.list({"type": "financial_connections.account.refreshed_ownership"}).data[0]
    assert event.data.object.ownership == done.ownership
    owners = accounts.owners.list("fca_owned", {"ownership": done.ownership})
    assert [o.name for o in owners.data] == ["Grace Hopper", "Alan Turing", "Edsger Dijkstra"]
    assert owners.data[0].email == "grace@example.com" and owners.data[1].email is None
    assert all(o.ownership == done.ownership for o in owners.data)
    first = accounts.owners.list("fca_owned", {"ownership": done.ownership, "limit": 1})
    assert first.has_more is True
    after = accounts.owners.list("fca_owned", {"ownership": done.ownership, "starting_after": first.data[0].id})
    assert [o.name for o in after.data] == ["Alan Turing", "Edsger Dijkstra"] and after.has_more is False
    before = accounts.owners.list("fca_owned", {"ownership": done.ownership, "ending_before": after.data[1].id})
    assert [o.name for o in before.data] == ["Grace Hopper", "Alan Turing"]
    paged = [o.name for o in accounts.owners.list("fca_owned", {"ownership": done.ownership, "limit": 1})
             .auto_paging_iter()]
    assert paged == ["Grace Hopper", "Alan Turing", "Edsger Dijkstra"]
    expanded = accounts.retrieve("fca_owned", {"expand": ["ownership"]}).ownership
    assert expanded.object == "financial_connections.account_ownership"
    assert [o.name for o in expanded.owners.data] == ["Grace Hopper", "Alan Turing", "Edsger Dijkstra"]
    with pytest.raises(stripe.InvalidRequestError) as too_soon:
        accounts.refresh("fca_owned", {"features": ["ownership"]})
    assert too_soon.value.code == "financial_connections_refresh_too_soon"


def test_owners_defaults_to_the_customer_and_its_errors(loaded, raw):
    client = sdk(loaded)
    accounts = client.v1.financial_connections.accounts
    accounts.refresh("fca_cash", {"features": ["ownership"]})
    loaded.advance_clock(1)
    ownership = accounts.retrieve("fca_cash").ownership
    assert [o.name for o in accounts.owners.list("fca_cash", {"ownership": ownership})] == ["Ada Lovelace"]
    http = raw(loaded)
    missing = http.get("/v1/financial_connections/accounts/fca_cash/owners").json()["error"]
    assert (missing["code"], missing["param"]) == ("parameter_missing", "ownership")
    other = http.get("/v1/financial_connections/accounts/fca_credit/owners", params={"ownership": ownership})
    assert other.status_code == 404 and other.json()["error"]["param"] == "ownership"
    bad_cursor = http.get("/v1/financial_connections/accounts/fca_cash/owners",
                          params={"ownership": ownership, "starting_after": "fcaowner_nope"})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["code"] == "resource_missing"
    unknown = http.get("/v1/financial_connections/accounts/fca_cash/owners",
                       params={"ownership": ownership, "bogus": "1"})
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    no_permission = http.post("/v1/financial_connections/accounts/fca_credit/refresh",
                              data={"features[]": "ownership"}).json()["error"]
    assert no_permission["code"] == "financial_connections_missing_permission"


def test_every_documented_customer_create_parameter_is_accepted(sandbox):
    client = sdk(sandbox)
    created = client.v1.customers.create({
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "balance": -500, "business_name": "Acme Ltd", "individual_name": "Ada Lovelace",
        "cash_balance": {"settings": {"reconciliation_mode": "automatic"}}, "description": "d",
        "email": "ada@example.com", "invoice_prefix": "ACME1",
        "invoice_settings": {"footer": "Thanks", "custom_fields": [{"name": "PO", "value": "42"}]},
        "metadata": {"k": "v"}, "name": "Ada", "next_invoice_sequence": 7, "payment_method": "pm_card_visa",
        "phone": "+15555550100", "preferred_locales": ["en", "fr"],
        "shipping": {"name": "Ada", "address": {"line1": "2 Side St"}}, "source": "tok_visa",
        "tax": {"validate_location": "deferred"}, "tax_exempt": "reverse",
        "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}], "test_clock": "clock_1",
        "expand": ["tax"],
    })
    assert created.balance == -500 and created.business_name == "Acme Ltd"
    assert created.individual_name == "Ada Lovelace" and created.invoice_prefix == "ACME1"
    assert created.next_invoice_sequence == 7 and created.tax_exempt == "reverse"
    assert created.invoice_settings.custom_fields[0].to_dict() == {"name": "PO", "value": "42"}
    assert created.address.to_dict() == {"city": "Springfield", "country": "US", "line1": "1 Main St",
                                         "line2": None, "postal_code": None, "state": None}
    assert created.shipping.address.line1 == "2 Side St" and created.test_clock == "clock_1"
    assert created.tax.provider == "stripe"
    by_clock = client.v1.customers.list({"test_clock": "clock_1"})
    assert [c.id for c in by_clock.data] == [created.id]
    assert client.v1.customers.list({"test_clock": "clock_other"}).data == []
    for bad, param in (({"bogus": "1"}, "bogus"), ({"address": {"planet": "Mars"}}, "address[planet]")):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.customers.create(bad)
        assert (refused.value.code, refused.value.param) == ("parameter_unknown", param)
