"""Test scaffolding: the funds service served on a background thread of the test process, over real HTTP."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipelines.events import EVENT_STORE_RELATIVE
from pipelines.funds.answer import StripeAccess
from pipelines.funds.service import CHECKS_PATH, FundsService, ServiceConfig, start_service

TOKEN = "svc_test_token_0123456789abcdef"
OTHER_TOKEN = "svc_rotated_token_fedcba9876543210"


@dataclass
class ServiceHandle:
    url: str
    service: FundsService
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    _thread: threading.Thread

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def check(self, token: str | None = TOKEN, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + CHECKS_PATH, json=body, headers=headers, timeout=60)

    def get(self, decision_id: str, token: str = TOKEN) -> httpx.Response:
        return httpx.get(f"{self.url}{CHECKS_PATH}/{decision_id}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)


def config(warehouse: Path, sandbox: Any | None, tokens: tuple[str, ...] = (TOKEN,),
           webhook_secret: str | None = None, reserve_rps: float = 2.0, refresh_timeout: float = 30.0) -> ServiceConfig:
    stripe = StripeAccess(sandbox.api_key, sandbox.base_url, reserve_rps) if sandbox is not None else None
    return ServiceConfig(tokens, warehouse, warehouse / EVENT_STORE_RELATIVE, stripe, webhook_secret, refresh_timeout)


def start(config: ServiceConfig) -> ServiceHandle:
    """Start the service on a background thread (its own event loop); stop it with `handle.stop()`."""
    ready = threading.Event()
    started: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            service = FundsService(config)
            stop = asyncio.Event()
            runner, port = loop.run_until_complete(start_service(service, "127.0.0.1", 0))
        except BaseException as exc:  # handed to the caller's thread
            started["error"] = exc
            loop.close()
            ready.set()
            return
        started.update(loop=loop, stop=stop, port=port, service=service)
        ready.set()
        try:
            loop.run_until_complete(stop.wait())
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    thread = threading.Thread(target=serve, name="fc-serve", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        thread.join()
        raise started["error"]
    return ServiceHandle(f"http://127.0.0.1:{started['port']}", started["service"], started["loop"], started["stop"],
                         thread)
