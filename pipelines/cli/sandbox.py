"""The built-in sandbox for commands run without STRIPE_API_KEY: start it, move its clock, `fc-balances sandbox`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pipelines.cli.common import CliError

SANDBOX_KEY = "sk_test_sandbox"  # the built-in sandbox's default key: not a secret, never printed all the same
SANDBOX_START_TIMEOUT = 60.0


@contextmanager
def built_in_sandbox(demo_customers: int, seed: int, clock_offset_days: float = 0.0,
                     extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Start `python -m stripe_sandbox` on a free loopback port in its own process; yield its base address."""
    args = [sys.executable, "-m", "stripe_sandbox", "--host", "127.0.0.1", "--port", "0",
            "--demo-customers", str(demo_customers), "--seed", str(seed), *extra_args]
    if clock_offset_days:
        args += ["--clock-offset-days", str(clock_offset_days)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        base_url = _read_listen_line(proc)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_listen_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + SANDBOX_START_TIMEOUT
    line = proc.stdout.readline()  # the sandbox prints its address first, flushed
    if "listening on " not in line or time.monotonic() > deadline:
        err = (proc.stderr.read() if proc.poll() is not None and proc.stderr else "").strip().splitlines()
        raise CliError("the built-in sandbox did not start" + (f": {err[-1]}" if err else ""))
    return line.rsplit("listening on ", 1)[1].strip()


def advance_sandbox_clock(base_url: str, seconds: float) -> None:
    body = json.dumps({"advance_seconds": seconds}).encode()
    request = urllib.request.Request(  # noqa: S310 - the built-in sandbox on loopback
        f"{base_url}/_sandbox/clock", data=body, method="POST",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def cmd_sandbox(argv: list[str]) -> int:
    from stripe_sandbox.cli import main as sandbox_main

    return sandbox_main(argv)
