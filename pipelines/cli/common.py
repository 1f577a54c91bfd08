"""What every command shares: the one-line error, the printed line, the warehouse pre-flight, day arguments."""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
from datetime import date
from pathlib import Path

from pipelines.redact import redact


class CliError(Exception):
    """Ends the command with one line on stderr and exit code 1."""


def say(message: str) -> None:
    print(f"fc-balances: {redact(message)}", flush=True)


def check_warehouse_writable(directory: str) -> Path:
    """Fail before any API call when the warehouse folder cannot be created or written."""
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write to the warehouse folder {path}: {exc.strerror or exc}") from None
    return path.resolve()


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def wait_for_stop_signal() -> None:
    """Return on SIGINT or SIGTERM: a long-running command's cue to stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
