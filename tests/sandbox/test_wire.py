"""Wire compatibility: auth, headers, error shapes, form encoding, unknown params and URLs."""

from __future__ import annotations

import base64

import pytest
import stripe

from tests.sandbox.conftest import account, customer, sdk

# Every field of the spec's account except status_details, which Stripe sends only when it has details.
ACCOUNT_FIELDS = {
    "id", "object", "account_holder", "account_numbers", "balance", "balance_refresh", "category", "created",
    "display_name", "institution_name", "last4", "livemode", "ownership", "ownership_refresh", "permissions",
    "status", "subcategory", "subscriptions", "supported_payment_method_types", "transaction_refresh",
}


@pytest.fixture
def loaded(sandbox):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    return sandbox


def test_missing_and_wrong_key_are_401_authentication_errors(loaded, raw):
    with pytest.raises(stripe.AuthenticationError):
        sdk(loaded, key="sk_test_wrong").v1.customers.list()
    response = raw(loaded).get("/v1/customers", headers={"Authorization": ""})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "API key" in error["message"]
    wrong = raw(loaded, key="sk_test_wrong_secret").get("/v1/customers")
    assert wrong.status_code == 401
    assert "sk_test_wrong_secret" not in wrong.text


def test_basic_auth_with_the_key_as_username_is_accepted(loaded, raw):
    token = base64.b64encode(f"{loaded.api_key}:".encode()).decode()
    response = raw(loaded).get("/v1/customers", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


def test_every_response_has_request_id_and_stripe_version(loaded, raw):
    client = raw(loaded)
    ok = client.get("/v1/customers/cus_A", headers={"Stripe-Version": "2024-06-20"})
    missing = client.get("/v1/customers/cus_nope")
    unknown = client.get("/v1/nothing_here")
    for response in (ok, missing, unknown):
        assert response.headers["Request-Id"].startswith("req_")
        assert response.headers["Content-Type"].startswith("application/json")
    assert ok.headers["Stripe-Version"] == "2024-06-20"
    assert ok.headers["Request-Id"] != missing.headers["Request-Id"]
    assert unknown.status_code == 404
    assert "Unrecognized request URL" in unknown.json()["error"]["message"]


def test_account_has_every_field_and_customer_fields_are_present(loaded):
    client = sdk(loaded)
    fetched = client.v1.financial_connections.accounts.retrieve("fca_1").to_dict()
    assert set(fetched) == ACCOUNT_FIELDS
    # account and customer_account are not nullable: left out for a customer-held account.
    assert fetched["account_holder"] == {"customer": "cus_A", "type": "customer"}
    assert fetched["object"] == "financial_connections.account"
    assert fetched["livemode"] is False
    person = client.v1.customers.retrieve("cus_A").to_dict()
    assert person["email"] == "cus_A@example.com"
    assert person["object"] == "customer"
    assert {"name", "phone", "metadata", "address", "description"} <= set(person)
    assert not {"business_name", "individual_name"} & set(person)


def test_unknown_ids_are_404_resource_missing(loaded):
    client = sdk(loaded)
    for call in (lambda: client.v1.customers.retrieve("cus_missing"),
                 lambda: client.v1.financial_connections.accounts.retrieve("fca_missing"),
                 lambda: client.v1.financial_connections.accounts.refresh("fca_missing", {"features": ["balance"]}),
                 lambda: client.v1.events.retrieve("evt_missing")):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.http_status == 404
        assert caught.value.code == "resource_missing"


@pytest.mark.parametrize("limit", [0, 101, "ten", -3])
def test_bad_limits_are_400(loaded, limit):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(loaded).v1.customers.list({"limit": limit})
    assert caught.value.http_status == 400
    assert caught.value.param == "limit"


def test_unknown_parameters_are_400_naming_the_parameter(loaded, raw):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(loaded).v1.financial_connections.accounts.list({"colour": "blue"})  # type: ignore[typeddict-unknown-key]
    assert caught.value.param == "colour"
    nested = raw(loaded).get("/v1/financial_connections/accounts", params={"account_holder[bank]": "x"})
    assert nested.status_code == 400
    assert nested.json()["error"]["param"] == "account_holder[bank]"
    created = raw(loaded).get("/v1/events", params={"created[after]": "5"})
    assert created.status_code == 400
    assert created.json()["error"]["param"] == "created[after]"


@pytest.mark.parametrize("body", ["features[]=balance", "features[0]=balance", "features%5B%5D=balance"])
def test_arrays_in_both_bracket_styles(sandbox, raw, body):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    response = raw(sandbox).post("/v1/financial_connections/accounts/fca_1/refresh", content=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert response.json()["balance_refresh"]["status"] == "pending"


@pytest.mark.parametrize("body", [
    "features=balance",                    # a scalar where an array is required
    "features[]=balance&features[x]=1",    # array and hash at once
    "features[]=weather",                  # not a feature
    "features[0]=balance&features=balance",  # hash then scalar
    "fea]tures[]=balance",                 # malformed name
    "%ff%fe=1",                            # not UTF-8
])
def test_malformed_bodies_get_400_not_500(sandbox, raw, body):
    sandbox.load_fixtures({"customers": [customer("cus_A")], "accounts": [account("fca_1", "cus_A")]})
    response = raw(sandbox).post("/v1/financial_connections/accounts/fca_1/refresh", content=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_refresh_without_features_is_400_missing_param(loaded):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(loaded).v1.financial_connections.accounts.refresh("fca_1", {})  # type: ignore[typeddict-item]
    assert caught.value.param == "features"
    assert caught.value.code == "parameter_missing"


def test_create_customer_then_list_by_email(sandbox):
    client = sdk(sandbox)
    created = client.v1.customers.create({"email": "new@example.com", "name": "New", "metadata": {"k": "v"}})
    assert created.id.startswith("cus_") and len(created.id) == 18
    assert created.metadata.to_dict() == {"k": "v"}
    found = client.v1.customers.list({"email": "new@example.com"})
    assert [c.id for c in found.data] == [created.id]
    assert found.url == "/v1/customers"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"email": "not-an-email"})
