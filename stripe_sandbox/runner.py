"""Run the sandbox on a daemon thread with its own event loop, and the handle callers use to control it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

from stripe_sandbox.config import SandboxConfig
from stripe_sandbox.server import SandboxServer

T = TypeVar("T")
START_TIMEOUT_SECONDS = 120.0


class Sandbox:
    """A running sandbox; use as a context manager or call stop()."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.server = SandboxServer(config)
        self._loop = asyncio.new_event_loop()
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.port = 0

    @property
    def base_url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    def __repr__(self) -> str:  # never show the key
        return f"<Sandbox {self.base_url} mode={self.config.mode}>"

    # ---- start / stop ----------------------------------------------------------------------------------

    def _start(self) -> None:
        started: Future[int] = Future()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                port = self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # report start failures to the caller's thread
                started.set_exception(exc)
                self._loop.close()
                return
            started.set_result(port)
            try:
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._shutdown())
                self._loop.close()

        self._thread = threading.Thread(target=run, name=f"stripe_sandbox:{self.config.port}", daemon=True)
        self._thread.start()
        self.port = started.result(timeout=START_TIMEOUT_SECONDS)

    async def _serve(self) -> int:
        state = self.server.state
        if self.config.demo_customers:
            state.load_demo(self.config.demo_customers)
        if self.config.fixtures is not None:
            state.load_fixtures(self.config.fixtures)
        self._runner = web.ServerRunner(self.server.make_server(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        await self.server.start_background()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None and server.sockets
        return int(server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.server.stop_background()

    def stop(self) -> None:
        if self._stopped or self._thread is None:
            return
        self._stopped = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- control (thread-safe: each call runs on the sandbox loop) -------------------------------------

    def _call(self, function: Callable[[], T]) -> T:
        if self._stopped:
            raise RuntimeError("the sandbox is stopped")

        async def on_loop() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(timeout=300)

    def load_fixtures(self, fixtures: dict[str, Any], emit_events: bool = False) -> dict[str, int]:
        """Add or replace objects; FixtureError (nothing loaded) on bad input.

        Emits no events unless `emit_events` (as `POST /_sandbox/fixtures` does): then `.created` for new
        accounts and `.deactivated` / `.reactivated` for replaced ones whose status changed.
        """
        return self._call(lambda: self.server.state.load_fixtures(fixtures, emit_events))

    def set_account_status(self, account_id: str, status: str) -> dict[str, Any]:
        """Deactivate (`inactive`) or reactivate (`active`) an account, with Stripe's event; returns it."""
        return self._call(lambda: json.loads(self.server.state.set_status(account_id, status).render()))

    def load_demo(self, customers: int) -> dict[str, int]:
        """Add `customers` more demo customers with their accounts."""
        return self._call(lambda: self.server.state.load_demo(customers))

    def reset(self) -> None:
        """Empty state (objects, events, idempotency keys, stats); settings and the clock stay."""
        self._call(self.server.reset)

    def update_settings(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings (any field in config.RUNTIME_FIELDS); ValueError names a bad one."""
        return self._call(lambda: self.server.update_settings(settings))

    def advance_clock(self, seconds: float) -> float:
        """Move the virtual clock forward; refreshes that become due complete now. Returns sandbox time."""
        return self._call(lambda: self.server.advance_clock(seconds))

    def now(self) -> float:
        return self.server.now()

    def stats(self) -> dict[str, Any]:
        return self._call(lambda: (self.server.state.process_due(), self.server.stats())[1])


def start_sandbox(config: SandboxConfig | None = None, **overrides: Any) -> Sandbox:
    """Start a sandbox and return once it listens (demo data and fixtures already loaded)."""
    config = dataclasses.replace(config or SandboxConfig(), **overrides)
    sandbox = Sandbox(config)
    sandbox._start()
    return sandbox
