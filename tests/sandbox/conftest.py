"""Helpers for the sandbox tests: SDK and raw HTTP clients, fixture builders."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from stripe_sandbox import Sandbox, SandboxConfig, start_sandbox
from tests.conftest import TEST_SANDBOX_DEFAULTS
from tests.sandbox.spec_check import check_response


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "off_spec(object_id): responses naming this id carry data a fixture scripted off Stripe's "
        "spec on purpose (to test the pipeline's defences); only they are left out of the spec check")


@pytest.fixture
def sandbox_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Sandbox]]:
    """As the root one, but every sandbox records its /v1 responses, and at teardown each one is checked
    against Stripe's vendored OpenAPI spec: a response the spec does not allow fails the test."""
    started: list[Sandbox] = []
    marker = request.node.get_closest_marker("off_spec")
    exempt = marker.args[0].encode() if marker else None

    def factory(**overrides: Any) -> Sandbox:
        config = SandboxConfig(**{**TEST_SANDBOX_DEFAULTS, **overrides, "record_responses": True})
        sandbox = start_sandbox(config)
        started.append(sandbox)
        return sandbox

    yield factory
    problems: list[str] = []
    for sandbox in started:
        sandbox.stop()
        for method, path, status, body in sandbox.server.recorded or []:
            if exempt is None or exempt not in body:
                problems += check_response(method, path, status, body)
    assert not problems, f"{len(problems)} responses break the spec:\n" + "\n".join(problems[:30])


def sdk(sandbox: Sandbox, retries: int = 0, key: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(key or sandbox.api_key, base_addresses={"api": sandbox.base_url},
                               max_network_retries=retries)


@pytest.fixture
def raw() -> Iterator[Any]:
    """A factory of httpx clients authenticated against a sandbox (for headers and exact wire checks)."""
    clients: list[httpx.Client] = []

    def make(sandbox: Sandbox, key: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=sandbox.base_url, timeout=10,
                              headers={"Authorization": f"Bearer {key or sandbox.api_key}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def customer(customer_id: str, created: int = 1_764_000_000, **fields: Any) -> dict[str, Any]:
    return {"id": customer_id, "created": created, "email": f"{customer_id}@example.com", **fields}


def account(account_id: str, customer_id: str, created: int = 1_764_000_000, **fields: Any) -> dict[str, Any]:
    base = {"id": account_id, "customer": customer_id, "institution_name": "StripeBank", "category": "cash",
            "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
            "created": created, "balance": None, "balance_refresh": None}
    return {**base, **fields}


def cash_balance(current: int, available: int | None = None, currency: str = "usd", **extra: Any) -> dict:
    return {"type": "cash", "current": {currency: current},
            "cash": {"available": {currency: current if available is None else available}}, **extra}


class _Receiver:
    """A tiny webhook endpoint on 127.0.0.1 that fails its first `fail_first` posts with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= fail_first:
                    self.send_response(500)
                else:
                    receiver.received.append((body, self.headers["Stripe-Signature"]))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[_Receiver] = []

    def make(fail_first: int = 0) -> _Receiver:
        made.append(_Receiver(fail_first))
        return made[-1]

    yield make
    for item in made:
        item.close()
