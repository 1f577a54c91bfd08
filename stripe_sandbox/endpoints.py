"""The Stripe endpoints: routing, parameters, pages and expansion, over the sandbox state (a mixin of the server)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.customer_params import customer_fields
from stripe_sandbox.errors import invalid, missing_param, unknown_param
from stripe_sandbox.expand import ACCOUNT, Expander, Tree, expand_tree
from stripe_sandbox.ownership import owners_url
from stripe_sandbox.state import (
    REFRESH_FEATURES,
    SUBSCRIBE_FEATURES,
    AccountRecord,
    CustomerRecord,
    Key,
    PageQuery,
    SandboxState,
    dumps,
    paginate,
)

ACCOUNTS_PATH = "/v1/financial_connections/accounts"
MAX_TYPES = 20


@dataclass(slots=True)
class Route:
    template: str
    handler: Callable[[Any, dict[str, Any], str | None, RequestContext], str]
    permission: str
    object_id: str | None


@dataclass(slots=True)
class RequestContext:
    request_id: str
    idempotency_key: str | None


def _int_param(value: Any, param: str) -> int:
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) < 19:
            return int(text)
    raise invalid(f"Invalid integer: {str(value)[:100]}", param=param)


def _check_params(params: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise unknown_param(name)


def _created_bounds(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, str):
        exact = _int_param(value, "created")
        return exact, exact
    if not isinstance(value, dict):
        raise invalid("Invalid created: must be an integer or a hash of gt, gte, lt, lte", param="created")
    low: int | None = None
    high: int | None = None
    for op, raw in value.items():
        bound = _int_param(raw, f"created[{op}]")
        if op == "gt":
            low = bound + 1 if low is None else max(low, bound + 1)
        elif op == "gte":
            low = bound if low is None else max(low, bound)
        elif op == "lt":
            high = bound - 1 if high is None else min(high, bound - 1)
        elif op == "lte":
            high = bound if high is None else min(high, bound)
        else:
            raise unknown_param(f"created[{op}]")
    return low, high


class StripeEndpoints:
    """Handlers take (params, object id, context) and return the JSON body; errors are raised as ApiError."""

    state: SandboxState
    expander: Expander

    # ---- routing -------------------------------------------------------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=4096)  # a path seen once is usually asked again (pollers, retries)
    def _route(method: str, path: str) -> Route | None:
        parts = path.rstrip("/").split("/")
        # parts[0] == "" and parts[1] == "v1" for every Stripe path
        if len(parts) < 3 or parts[1] != "v1":
            return None
        rest = parts[2:]
        if rest[0] == "customers":
            if len(rest) == 1:
                if method == "GET":
                    return Route("/v1/customers", StripeEndpoints._list_customers, "customers_read", None)
                if method == "POST":
                    return Route("/v1/customers", StripeEndpoints._create_customer, "customers_write", None)
            elif len(rest) == 2 and method == "GET" and rest[1]:
                return Route("/v1/customers/{id}", StripeEndpoints._get_customer, "customers_read", rest[1])
            return None
        if rest[0] == "financial_connections" and len(rest) >= 2 and rest[1] == "accounts":
            if len(rest) == 2 and method == "GET":
                return Route(ACCOUNTS_PATH, StripeEndpoints._list_accounts, "financial_connections_accounts_read",
                             None)
            if len(rest) == 3 and method == "GET" and rest[2]:
                return Route(f"{ACCOUNTS_PATH}/{{id}}", StripeEndpoints._get_account,
                             "financial_connections_accounts_read", rest[2])
            if len(rest) == 4 and rest[2]:
                action = ACCOUNT_ACTIONS.get((method, rest[3]))
                if action is not None:
                    handler, permission = action
                    return Route(f"{ACCOUNTS_PATH}/{{id}}/{rest[3]}", handler, permission, rest[2])
            return None
        if rest[0] == "events" and method == "GET":
            if len(rest) == 1:
                return Route("/v1/events", StripeEndpoints._list_events, "events_read", None)
            if len(rest) == 2 and rest[1]:
                return Route("/v1/events/{id}", StripeEndpoints._get_event, "events_read", rest[1])
        return None

    # ---- Stripe endpoints ----------------------------------------------------------------------------

    def _page_query(self, params: dict[str, Any], kind: str) -> PageQuery:
        query = PageQuery(limit=self._limit(params))
        if "starting_after" in params and "ending_before" in params:
            raise invalid("Received both starting_after and ending_before parameters. Please pass in only one.")
        if "starting_after" in params:
            query.starting_after = self.state.cursor_key(kind, params["starting_after"], "starting_after")
        if "ending_before" in params:
            query.ending_before = self.state.cursor_key(kind, params["ending_before"], "ending_before")
        if "created" in params:
            query.created_min, query.created_max = _created_bounds(params["created"])
        return query

    @staticmethod
    def _limit(params: dict[str, Any]) -> int:
        if "limit" not in params:
            return 10
        limit = _int_param(params["limit"], "limit")
        if limit < 1:
            raise invalid("This value must be greater than or equal to 1.", param="limit")
        if limit > 100:
            raise invalid("This value must be less than or equal to 100.", param="limit")
        return limit

    @staticmethod
    def _list_body(url: str, objects: list[str], has_more: bool) -> str:
        return (f'{{"object":"list","data":[{",".join(objects)}],'
                f'"has_more":{"true" if has_more else "false"},"url":"{url}"}}')

    def _customer_doc(self, customer_id: str) -> dict[str, Any] | None:
        record = self.state.customers.get(customer_id)
        return record.doc if record is not None else None

    def _account_json(self, record: AccountRecord, tree: Tree) -> str:
        return dumps(self.expander.apply(ACCOUNT, record.doc, tree)) if tree else record.render()

    def _customer_json(self, record: CustomerRecord, tree: Tree) -> str:
        return dumps(self.expander.apply("customer", record.doc, tree)) if tree else record.render()

    _CUSTOMER_LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "email", "created", "expand",
                                       "test_clock"})
    _ACCOUNT_LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "account_holder", "session",
                                      "expand"})
    _EVENT_LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "type", "types", "created",
                                    "delivery_success", "expand"})
    _OWNER_LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "ownership", "expand"})
    _EXPAND_ONLY = frozenset({"expand"})
    _FEATURE_PARAMS = frozenset({"features", "expand"})

    def _list_customers(self, params: dict[str, Any], _id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._CUSTOMER_LIST_PARAMS)
        tree = expand_tree(params, "list:customer").get("data", {})
        query = self._page_query(params, "customer")
        filters = []
        for name, index in (("email", self.state.customers_by_email),
                            ("test_clock", self.state.customers_by_test_clock)):
            value = params.get(name)
            if value is not None:
                if not isinstance(value, str):
                    raise invalid(f"Invalid {name}: must be a string", param=name)
                filters.append(index.get(value, []))
        keys_list = [self.state.customer_keys] if not filters else filters[:1]
        if len(filters) == 2:
            by_clock = set(filters[1])
            keys_list = [[key for key in filters[0] if key in by_clock]]
        keys, has_more = paginate(keys_list, query)
        customers = self.state.customers
        return self._list_body("/v1/customers", [self._customer_json(customers[key[1]], tree) for key in keys],
                               has_more)

    def _create_customer(self, params: dict[str, Any], _id: str | None, ctx: RequestContext) -> str:
        fields = customer_fields(params)
        tree = expand_tree(params, "customer")
        record = self.state.create_customer(fields, ctx.request_id, ctx.idempotency_key)
        return self._customer_json(record, tree)

    def _get_customer(self, params: dict[str, Any], customer_id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._EXPAND_ONLY)
        assert customer_id is not None
        tree = expand_tree(params, "customer")
        return self._customer_json(self.state.customer(customer_id), tree)

    def _list_accounts(self, params: dict[str, Any], _id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._ACCOUNT_LIST_PARAMS)
        tree = expand_tree(params, f"list:{ACCOUNT}").get("data", {})
        holder = params.get("account_holder", {})
        if not isinstance(holder, dict):
            raise invalid("Invalid hash: account_holder", param="account_holder")
        for name in holder:
            if name not in ("account", "customer", "customer_account"):
                raise unknown_param(f"account_holder[{name}]")
        filters = [(f"account_holder[{name}]", value) for name, value in holder.items()]
        if "session" in params:
            filters.append(("session", params["session"]))
        if len(filters) > 1:
            raise invalid("You may only specify one of these parameters: account_holder[account], "
                          "account_holder[customer], account_holder[customer_account], session.")
        query = self._page_query(params, ACCOUNT)
        state = self.state
        keys_list: list[list[Key]] = [state.account_keys]
        if filters:
            name, value = filters[0]
            if not isinstance(value, str):
                raise invalid(f"Invalid {name}: must be a string", param=name)
            index = {"account_holder[customer]": state.accounts_by_customer,
                     "account_holder[account]": state.accounts_by_holder_account,
                     "account_holder[customer_account]": state.accounts_by_customer_account,
                     "session": state.accounts_by_session}[name]
            keys_list = [index.get(value, [])]
        keys, has_more = paginate(keys_list, query)
        accounts = state.accounts
        return self._list_body(ACCOUNTS_PATH, [self._account_json(accounts[key[1]], tree) for key in keys],
                               has_more)

    def _get_account(self, params: dict[str, Any], account_id: str | None, _ctx: RequestContext) -> str:
        if params:
            _check_params(params, self._EXPAND_ONLY)
            tree = expand_tree(params, ACCOUNT)
        else:
            tree = {}
        assert account_id is not None
        return self._account_json(self.state.account(account_id), tree)

    @staticmethod
    def _features(params: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
        features = params.get("features")
        if features is None or features == [] or features == "":
            raise missing_param("features")
        if not isinstance(features, list):
            raise invalid("Invalid array: features must be an array (features[]=...)", param="features")
        for position, feature in enumerate(features):
            if feature not in allowed:
                raise invalid(f"Invalid features[{position}]: must be one of {', '.join(allowed)}",
                              param=f"features[{position}]")
        return list(dict.fromkeys(features))

    def _refresh_account(self, params: dict[str, Any], account_id: str | None, ctx: RequestContext) -> str:
        _check_params(params, self._FEATURE_PARAMS)
        assert account_id is not None
        features = self._features(params, REFRESH_FEATURES)
        tree = expand_tree(params, ACCOUNT)
        self.state.account(account_id)  # 404 before anything else
        record = self.state.refresh(account_id, features, ctx.request_id, ctx.idempotency_key)
        return self._account_json(record, tree)

    def _subscribe_account(self, params: dict[str, Any], account_id: str | None, ctx: RequestContext) -> str:
        _check_params(params, self._FEATURE_PARAMS)
        assert account_id is not None
        features = self._features(params, SUBSCRIBE_FEATURES)
        tree = expand_tree(params, ACCOUNT)
        record = self.state.subscribe(account_id, features, ctx.request_id, ctx.idempotency_key)
        return self._account_json(record, tree)

    def _unsubscribe_account(self, params: dict[str, Any], account_id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._FEATURE_PARAMS)
        assert account_id is not None
        features = self._features(params, SUBSCRIBE_FEATURES)
        tree = expand_tree(params, ACCOUNT)
        return self._account_json(self.state.unsubscribe(account_id, features), tree)

    def _disconnect_account(self, params: dict[str, Any], account_id: str | None, ctx: RequestContext) -> str:
        _check_params(params, self._EXPAND_ONLY)
        assert account_id is not None
        tree = expand_tree(params, ACCOUNT)
        return self._account_json(self.state.disconnect(account_id, ctx.request_id, ctx.idempotency_key), tree)

    def _list_owners(self, params: dict[str, Any], account_id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._OWNER_LIST_PARAMS)
        assert account_id is not None
        expand_tree(params, "list:financial_connections.account_owner")  # owners hold nothing to expand
        ownership_id = params.get("ownership")
        if ownership_id is None or ownership_id == "":
            raise missing_param("ownership")
        if not isinstance(ownership_id, str):
            raise invalid("Invalid ownership: must be a string", param="ownership")
        limit = self._limit(params)
        if "starting_after" in params and "ending_before" in params:
            raise invalid("Received both starting_after and ending_before parameters. Please pass in only one.")
        self.state.account(account_id)
        ownership = self.state.ownerships.for_account(account_id, ownership_id)
        owners, has_more = self.state.ownerships.page(ownership, limit, params.get("starting_after"),
                                                      params.get("ending_before"))
        return self._list_body(owners_url(account_id), [dumps(owner) for owner in owners], has_more)

    def _list_events(self, params: dict[str, Any], _id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._EVENT_LIST_PARAMS)
        expand_tree(params, "list:event")  # events' expandable fields are always whole: nothing changes
        type_pattern = params.get("type")
        types = params.get("types")
        if type_pattern is not None and types is not None:
            raise invalid("You may only specify one of these parameters: type, types.")
        if type_pattern is not None and not isinstance(type_pattern, str):
            raise invalid("Invalid type: must be a string", param="type")
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise invalid("Invalid array: types must be an array of strings (types[]=...)", param="types")
            if len(types) > MAX_TYPES:
                raise invalid(f"Invalid array: types can have at most {MAX_TYPES} elements", param="types")
        delivery = params.get("delivery_success")
        if delivery is not None and delivery not in ("true", "false"):
            raise invalid("Invalid boolean: delivery_success must be true or false", param="delivery_success")
        query = self._page_query(params, "event")
        store = self.state.event_store
        lists = store.type_lists(type_pattern, types)
        if delivery is not None:
            lists = store.delivery_filtered(lists, delivery == "true")
        keys, has_more = paginate(lists, query)
        events = store.events
        return self._list_body("/v1/events", [events[key[1]].json for key in keys], has_more)

    def _get_event(self, params: dict[str, Any], event_id: str | None, _ctx: RequestContext) -> str:
        _check_params(params, self._EXPAND_ONLY)
        assert event_id is not None
        expand_tree(params, "event")
        return self.state.event_store.get(event_id).json


# (method, last path segment) -> (handler, permission) for `/v1/financial_connections/accounts/{id}/...`.
ACCOUNT_ACTIONS: dict[tuple[str, str], tuple[Callable[..., str], str]] = {
    ("POST", "refresh"): (StripeEndpoints._refresh_account, "financial_connections_accounts_write"),
    ("POST", "disconnect"): (StripeEndpoints._disconnect_account, "financial_connections_accounts_write"),
    ("POST", "subscribe"): (StripeEndpoints._subscribe_account, "financial_connections_accounts_write"),
    ("POST", "unsubscribe"): (StripeEndpoints._unsubscribe_account, "financial_connections_accounts_write"),
    ("GET", "owners"): (StripeEndpoints._list_owners, "financial_connections_accounts_read"),
}
