"""Lists paginate like Stripe: newest first, ties broken by id, cursors both ways, filters."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import account, customer, sdk

# 23 customers over only 4 distinct `created` values: pages must still never repeat or skip.
CUSTOMERS = [customer(f"cus_{index:02d}{'xyz'[index % 3]}", created=1_764_000_000 + index % 4)
             for index in range(23)]
NEWEST_FIRST = [c["id"] for c in sorted(CUSTOMERS, key=lambda c: (c["created"], c["id"]), reverse=True)]


@pytest.fixture
def many(sandbox):
    accounts = [account(f"fca_{index:02d}", CUSTOMERS[index % 5]["id"], created=1_764_100_000 + index % 3)
                for index in range(17)]
    accounts.append(account("fca_other_holder", "", account_holder={"type": "account", "account": "acct_1"},
                            customer=None))
    accounts.append(account("fca_in_session", "cus_00x", session="fcsess_1"))
    sandbox.load_fixtures({"customers": CUSTOMERS, "accounts": accounts})
    return sandbox


def test_auto_paging_returns_everything_once_in_order(many):
    first_page = sdk(many).v1.customers.list({"limit": 4})
    assert len(first_page.data) == 4 and first_page.has_more is True
    ids = [c.id for c in first_page.auto_paging_iter()]
    assert ids == NEWEST_FIRST
    stats = many.stats()
    assert stats["requests"]["GET /v1/customers"] == 6  # 23 objects / 4 per page


def test_starting_after_and_ending_before_are_exact_windows(many):
    client = sdk(many)
    after = client.v1.customers.list({"limit": 5, "starting_after": NEWEST_FIRST[6]})
    assert [c.id for c in after.data] == NEWEST_FIRST[7:12]
    assert after.has_more is True
    before = client.v1.customers.list({"limit": 5, "ending_before": NEWEST_FIRST[10]})
    assert [c.id for c in before.data] == NEWEST_FIRST[5:10]
    assert before.has_more is True
    top = client.v1.customers.list({"limit": 5, "ending_before": NEWEST_FIRST[3]})
    assert [c.id for c in top.data] == NEWEST_FIRST[0:3]
    assert top.has_more is False
    last = client.v1.customers.list({"limit": 5, "starting_after": NEWEST_FIRST[-3]})
    assert [c.id for c in last.data] == NEWEST_FIRST[-2:]
    assert last.has_more is False


def test_auto_paging_backwards_from_ending_before(many):
    page = sdk(many).v1.customers.list({"limit": 3, "ending_before": NEWEST_FIRST[15]})
    # The SDK walks towards newer objects and yields each page reversed: oldest first.
    assert [c.id for c in page.auto_paging_iter()] == list(reversed(NEWEST_FIRST[:15]))


def test_cursor_errors(many):
    client = sdk(many)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.list({"starting_after": "cus_does_not_exist"})
    assert caught.value.param == "starting_after"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.list({"starting_after": NEWEST_FIRST[1], "ending_before": NEWEST_FIRST[5]})


def test_created_filter_on_customers(many):
    listed = sdk(many).v1.customers.list({"created": {"gte": 1_764_000_002}, "limit": 100})
    expected = [c for c in NEWEST_FIRST if next(x for x in CUSTOMERS if x["id"] == c)["created"] >= 1_764_000_002]
    assert [c.id for c in listed.data] == expected
    exact = sdk(many).v1.customers.list({"created": 1_764_000_001, "limit": 100})
    assert {c.created for c in exact.data} == {1_764_000_001}


def test_accounts_filtered_by_holder_session_or_unfiltered(many):
    client = sdk(many)
    by_customer = [a.id for a in client.v1.financial_connections.accounts.list(
        {"account_holder": {"customer": "cus_01y"}, "limit": 2}).auto_paging_iter()]
    expected = sorted(((1_764_100_000 + i % 3, f"fca_{i:02d}") for i in range(17) if i % 5 == 1), reverse=True)
    assert by_customer == [account_id for _, account_id in expected]
    other = client.v1.financial_connections.accounts.list({"account_holder": {"account": "acct_1"}})
    assert [a.id for a in other.data] == ["fca_other_holder"]
    assert other.data[0].account_holder.type == "account"
    session = client.v1.financial_connections.accounts.list({"session": "fcsess_1"})
    assert [a.id for a in session.data] == ["fca_in_session"]
    everything = list(client.v1.financial_connections.accounts.list({"limit": 7}).auto_paging_iter())
    assert len(everything) == 19 and len({a.id for a in everything}) == 19
    nobody = client.v1.financial_connections.accounts.list({"account_holder": {"customer": "cus_nobody"}})
    assert nobody.data == [] and nobody.has_more is False


def test_more_than_one_holder_filter_is_400(many):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(many).v1.financial_connections.accounts.list(
            {"account_holder": {"customer": "cus_00x"}, "session": "fcsess_1"})
    assert caught.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError):
        sdk(many).v1.financial_connections.accounts.list(
            {"account_holder": {"customer": "cus_00x", "account": "acct_1"}})
