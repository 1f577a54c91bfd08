"""`fc-balances webhooks` as a real process: start line, exit codes, clean stop, and no secret in any output."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.events.helpers import SECRET, T0, account, event, signed

LISTENING = "fc-balances webhooks listening on http://127.0.0.1:"


def command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("fc-balances")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]
    return [*base, "webhooks", *args]


def environment(warehouse: Path, secret: str | None = SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STRIPE_WEBHOOK_SECRET", "FC_BALANCES_EVENT_STORE")}
    env["FC_BALANCES_WAREHOUSE"] = str(warehouse)
    if secret is not None:
        env["STRIPE_WEBHOOK_SECRET"] = secret
    return env


def read_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the receiver printed nothing"
    return proc.stdout.readline()


@pytest.fixture
def receiver_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(command("--host", "127.0.0.1", "--port", "0"), env=environment(tmp_path / "wh"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = read_line(proc)
        assert line.startswith(LISTENING) and line.rstrip().endswith("/stripe/webhooks"), line
        yield proc, line.split(" on ", 1)[1].strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_missing_secret_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(command("--port", "0"), env=environment(tmp_path, secret=None),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "STRIPE_WEBHOOK_SECRET" in lines[0]
    assert "Traceback" not in done.stderr


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(command("--port", str(port)), env=environment(tmp_path / "wh"),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(port) in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_serves_stores_and_never_prints_the_secret(receiver_process: tuple, tmp_path: Path) -> None:
    proc, url = receiver_process
    now = int(time.time())
    good = event("evt_cli", "refreshed_balance", T0 + 100, account(balance=None))
    deliveries = [
        signed(good),  # stored
        signed(good),  # duplicate
        signed(good, secret="whsec_theWrongSecret1234"),
        # Well past the 300 s tolerance either way: a loaded machine may take seconds between here and the check.
        signed(good, timestamp=now - 360),
        signed(good, timestamp=now + 360),
        (json.dumps(good).encode(), {"Stripe-Signature": f"t={now},v1={'ab' * 32}"}),
        (json.dumps(good).encode(), {}),
    ]
    statuses = [httpx.post(url, content=body, headers=headers).status_code for body, headers in deliveries]
    assert statuses == [200, 200, 400, 400, 400, 400, 400]
    assert httpx.get(url.rsplit("/stripe/", 1)[0] + "/healthz").json()["stored"] == 1

    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0
    output = stdout + stderr
    assert "Traceback" not in output
    assert SECRET not in output and "whsec_" not in output
    for _, headers in deliveries:  # nor any signature we were sent
        for part in headers.get("Stripe-Signature", "").split(","):
            if part.startswith("v1="):
                assert part[3:] not in output
    assert "evt_cli" in stderr  # it does log what it stored, by id

    store = tmp_path / "wh" / "events" / "webhook_events.sqlite"
    with sqlite3.connect(store) as con:
        assert con.execute("SELECT event_id, source FROM stored_events").fetchall() == [("evt_cli", "webhook")]
    for path in store.parent.iterdir():  # the database, its WAL and shared-memory files
        assert SECRET.encode() not in path.read_bytes()
