"""Test scaffolding: the webhook receiver served on a background thread of the test process."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.events import EventStore
from pipelines.webhooks.receiver import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    WEBHOOK_PATH,
    WebhookReceiver,
    start_site,
    url_host,
)


@dataclass
class ReceiverHandle:
    """A receiver running on its own thread: `url` is its base address, `webhook_url` the endpoint to POST to."""

    url: str
    webhook_url: str
    port: int
    store_path: Path
    receiver: WebhookReceiver
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> ReceiverHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_receiver(store_path: str | os.PathLike[str], secret: str, host: str = DEFAULT_HOST, port: int = 0,
                   max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, store_busy_timeout: float = 30.0) -> ReceiverHandle:
    """Start the receiver on a background thread; stop it with `handle.stop()`."""
    ready = threading.Event()
    started: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        store: EventStore | None = None
        try:
            store = EventStore(store_path, busy_timeout=store_busy_timeout)
            receiver = WebhookReceiver(store, secret, max_body_bytes)
            stop = asyncio.Event()
            runner, bound = loop.run_until_complete(start_site(receiver, host, port))
        except BaseException as exc:  # handed to the caller's thread
            started["error"] = exc
            if store is not None:
                store.close()
            loop.close()
            ready.set()
            return
        started.update(loop=loop, stop=stop, port=bound, receiver=receiver)
        ready.set()
        try:
            loop.run_until_complete(stop.wait())
        finally:
            loop.run_until_complete(runner.cleanup())
            store.close()
            loop.close()

    thread = threading.Thread(target=serve, name="fc-webhooks", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        thread.join()
        raise started["error"]
    base = f"http://{url_host(host)}:{started['port']}"
    return ReceiverHandle(
        url=base, webhook_url=base + WEBHOOK_PATH, port=started["port"], store_path=Path(store_path).absolute(),
        receiver=started["receiver"], _loop=started["loop"], _stop=started["stop"], _thread=thread,
    )
