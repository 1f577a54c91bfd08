"""The service as operated: its own process, SIGTERM with a request in flight, the access log, a held warehouse."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipelines.funds.service import CHECKS_PATH
from tests.policy.helpers import ROOT, account, seed_warehouse
from tests.service.helpers import TOKEN, config, start

HOUR = 3600


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_"))}
    env.update(extra)
    return env


def _serve(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli.main", "serve", "--port", "0"], env=_env(env),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_without_a_token_it_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    for env in ({}, {"FC_BALANCES_SERVICE_TOKEN": "short"}):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "serve", "--port", "0"],
                              env=_env({"FC_BALANCES_WAREHOUSE": str(tmp_path), **env}), cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and "FC_BALANCES_SERVICE_TOKEN" in done.stderr
        assert "short" not in done.stderr and "Traceback" not in done.stderr


def test_sigterm_lets_the_request_in_flight_finish_and_the_log_has_no_secrets(
        sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(1.5, 1.5))
    fixture = account("fca_stale", as_of=time.time() - 3 * HOUR, available=1_234)
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}], "accounts": [fixture]})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, [fixture])
    env = {"FC_BALANCES_SERVICE_TOKEN": TOKEN, "FC_BALANCES_WAREHOUSE": str(warehouse),
           "STRIPE_API_KEY": sandbox.api_key, "STRIPE_API_BASE": sandbox.base_url}
    process = _serve(env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/v1/funds_checks", line).group(1))  # type: ignore[union-attr]
        answers: list[httpx.Response] = []
        request = threading.Thread(target=lambda: answers.append(httpx.post(
            f"http://127.0.0.1:{port}{CHECKS_PATH}", json={"account": "fca_stale", "amount": 5_000, "currency": "usd"},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)))
        request.start()
        deadline = time.monotonic() + 30
        while not any(k.endswith("/refresh") for k in sandbox.stats()["requests"]) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the check's refresh is under way: the request is in flight
        process.send_signal(signal.SIGTERM)
        request.join(60)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert [a.status_code for a in answers] == [200]
    answer = answers[0].json()
    assert answer["refreshed"] is True and answer["balance_minor"] == 9_000
    access = [line for line in stderr.splitlines() if CHECKS_PATH in line]
    assert len(access) == 1 and '"POST /v1/funds_checks HTTP/1.1" 200' in access[0]
    assert TOKEN not in stderr and sandbox.api_key not in stderr
    assert not re.search(r"\b(9000|1234)\b|balance_minor|available|fca_stale", stderr), stderr


HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write, as a run's batch write holds it
    con.execute(
        "INSERT INTO fc_balances (account_id, customer_id, balance_type, currency, as_of, current_minor, "
        "available_minor, fetched_at) VALUES ('fca_fresh', 'cus_A', 'cash', 'usd', now(), 11, 10, now())")
    print("held", flush=True)
    sys.stdin.readline()
    con.close()
""")


def test_it_answers_while_a_run_holds_the_warehouse_and_sees_what_it_landed(
        sandbox_factory: Callable[..., Any], tmp_path: Path) -> None:
    sandbox = sandbox_factory()
    fixture = account("fca_fresh", as_of=time.time() - 600, available=7_000)
    sandbox.load_fixtures({"customers": [{"id": "cus_A", "created": 1_764_000_000}], "accounts": [fixture]})
    warehouse = tmp_path / "warehouse"
    seed_warehouse(warehouse, [fixture])
    with start(config(warehouse, sandbox)) as service:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse / "fc_balances.duckdb")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            answers = [service.check(account="fca_fresh", amount=5_000, currency="usd") for _ in range(5)]
            # Nothing refused: memory answers with the balance it has while the file is held.
            assert [a.status_code for a in answers] == [200] * 5
            assert {a.json()["balance_minor"] for a in answers} == {7_000}
            assert service.service.checker.memory.warehouse_busy >= 1
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(30) == 0
        finally:
            if holder.poll() is None:
                holder.kill()
        # The balance the "run" landed is what the next check uses.
        after = service.check(account="fca_fresh", amount=5_000, currency="usd").json()
        assert (after["balance_minor"], after["sufficient"], after["basis"]) == (10, False, "available")
