"""Runs `fc-balances run` against a separate sandbox process and prints wall time against the rate-limit bound.

Usage: python bench/bench_pipeline.py [--accounts 1000] [--customers 500] [--latency 1] [--mode live]
       [--no-rate-limit] [--discovery per_customer|all] [--pipeline-rps R] [--time-v] [--stale-days N]
       [--timeline] [--profile PATH] [--memray PATH]

The bound is what Stripe's limits force: the busiest limit's necessary requests divided by that limit, plus one
refresh latency. With --time-v the pipeline runs under /usr/bin/time -v and its peak memory and CPU are printed.
The whole command is timed from outside; its output lines are timestamped as they arrive, so the breakdown (start-up
to the first line, the ingest to its last progress line, the marts, the end) is measured the same way, and so is
its CPU by phase (read from /proc as each line arrives).
--stale-days N gives every refresh a balance computed N days ago (the 100,000-account memory case uses 365).
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_test_bench"


def make_fixtures(accounts: int, customers: int, stale_days: int = 0) -> dict:
    """`accounts` active accounts with the balances permission spread evenly over `customers`, all refreshable; a
    refresh's balance is computed `stale_days` days before the run (0: at completion)."""
    created = 1_764_000_000
    as_of = {"as_of": int(time.time()) - stale_days * 86_400} if stale_days else {}
    custs = [{"id": f"cus_b{i:012d}", "email": f"c{i}@example.com", "created": created + i} for i in range(customers)]
    accts = []
    for i in range(accounts):
        cash = i % 4 != 3
        accts.append({
            "id": f"fca_b{i:022d}", "customer": custs[i % customers]["id"], "institution_name": "Bench Bank",
            "category": "cash" if cash else "credit", "subcategory": "checking" if cash else "credit_card",
            "status": "active", "permissions": ["balances"], "created": created + i,
            "refresh_outcomes": [{"status": "succeeded", "balance": as_of | (
                {"type": "cash", "current": {"usd": 10_000 + i}, "cash": {"available": {"usd": 9_000 + i}}}
                if cash else {"type": "credit", "current": {"usd": -5_000 - i}, "credit": {"used": {"usd": 5_000 + i}}}
            )}],
        })
    return {"customers": custs, "accounts": accts}


def admin(base: str, path: str) -> dict:
    request = urllib.request.Request(f"{base}/_sandbox/{path}", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process and its live descendants have used so far, from /proc; None where
    there is no /proc. The command may run under /usr/bin/time or py-spy: its own CPU is in a child."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending, seen = 0.0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            if current == pid:
                return None
    return total


def run_timed(command: list[str], env: dict[str, str]
              ) -> tuple[int, float, list[tuple[float, str]], str, float, list[float | None]]:
    """Run the command; its exit code, wall seconds, stdout lines with their arrival (seconds from start), stderr,
    the wall-clock time it started (to place the sandbox's first and last request), and the command's CPU seconds
    when each line arrived (its CPU by phase)."""
    started_at = time.time()
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[tuple[float, str]] = []
    cpu_at: list[float | None] = []
    errors: list[str] = []

    def drain_errors() -> None:
        assert process.stderr is not None
        errors.extend(process.stderr)

    reader = threading.Thread(target=drain_errors, daemon=True)
    reader.start()
    assert process.stdout is not None
    for line in process.stdout:
        lines.append((time.monotonic() - started, line.rstrip("\n")))
        cpu_at.append(tree_cpu(process.pid))
    code = process.wait()
    wall = time.monotonic() - started
    reader.join()
    return code, wall, lines, "".join(errors), started_at, cpu_at


_MART_LINE = re.compile(r"^fc-balances: (fc_\w+): .* in [\d.]+s$")


def cpu_phases(lines: list[tuple[float, str]], cpu_at: list[float | None]) -> str | None:
    """The command's CPU seconds by phase, from its CPU when each of its lines arrived: to the first line, the
    ingest (to its last progress line), the checks and the marts run's launch, then each mart's step."""
    samples = [(line, cpu) for (_, line), cpu in zip(lines, cpu_at, strict=True) if cpu is not None]
    progress = [i for i, (line, _) in enumerate(samples) if " | listed " in line]
    launch = next((i for i, (line, _) in enumerate(samples) if "marts: rebuilding" in line), None)
    if not samples or not progress or launch is None:
        return None
    parts = [f"to the first line {samples[0][1]:.1f}s", f"ingest {samples[progress[-1]][1] - samples[0][1]:.1f}s",
             f"checks and the marts' launch {samples[launch][1] - samples[progress[-1]][1]:.1f}s"]
    previous = samples[launch][1]
    for line, cpu in samples[launch + 1:]:
        mart = _MART_LINE.match(line)
        if mart:
            parts.append(f"{mart.group(1)} {cpu - previous:.1f}s")
            previous = cpu
    return "; ".join(parts)


def breakdown(lines: list[tuple[float, str]], wall: float, first_request: float | None = None,
              last_request: float | None = None) -> str:
    """Where the seconds go, from the arrival of the command's own lines and the sandbox's first and last request
    (seconds from the command's start)."""
    def first(prefix: str) -> float | None:
        return next((t for t, line in lines if line.startswith(prefix) or prefix in line), None)

    start = lines[0][0] if lines else wall
    progress = [t for t, line in lines if " | listed " in line]
    marts = first("marts: rebuilding")
    summary = first("done in ")
    parts = [f"start-up to the first line {start:.1f}s"]
    if first_request is not None and last_request is not None:
        parts.append(f"first Stripe request at {first_request:.2f}s, last at {last_request:.2f}s")
    if progress:
        parts.append(f"ingest progress until {progress[-1]:.1f}s")
    if marts is not None:
        parts.append(f"marts job launched at {marts:.1f}s")
    if summary is not None:
        parts.append(f"summary at {summary:.1f}s, exit at {wall:.1f}s")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--mode", choices=["test", "live"], default="live")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="limits off, the sandbox's and the pipeline's (memory/CPU runs)")
    parser.add_argument("--pipeline-rps", type=float, help="pipeline limits (global and per endpoint)")
    parser.add_argument("--discovery", choices=["per_customer", "all"], default="per_customer")
    parser.add_argument("--time-v", action="store_true", help="measure peak RSS and CPU with /usr/bin/time -v")
    parser.add_argument("--stale-days", type=int, default=0, help="balances computed this many days ago")
    parser.add_argument("--timeline", action="store_true", help="print every output line with its arrival time")
    parser.add_argument("--profile", metavar="PATH", help="run the command under cProfile, statistics to PATH")
    parser.add_argument("--py-spy", metavar="PATH", help="sample the command with py-spy (if installed: `pip "
                        "install py-spy`), a speedscope profile to PATH; sampling costs the command almost nothing")
    parser.add_argument("--memray", metavar="PATH", help="run the command under memray (pip install memray), "
                        "its capture to PATH (`memray flamegraph PATH`)")
    args = parser.parse_args()
    # The command is timed as an installed one runs: its modules compiled (as `make bench` and a wheel install do).
    for package in ("pipelines", "assets", "stripe_sandbox", "sql"):
        compileall.compile_dir(ROOT / package, quiet=1)

    work = Path(tempfile.mkdtemp(prefix="fcb-bench-"))
    fixtures = work / "fixtures.json"
    fixtures.write_text(json.dumps(make_fixtures(args.accounts, args.customers, args.stale_days)))
    sandbox_args = [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--api-key", KEY, "--mode", args.mode,
                    "--fixtures", str(fixtures), "--demo-customers", "0",
                    "--refresh-latency", str(args.latency), "--refresh-cooldown", "3600"]
    if args.no_rate_limit:
        sandbox_args.append("--no-rate-limit")
    sandbox = subprocess.Popen(sandbox_args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sandbox.stdout is not None
        base = sandbox.stdout.readline().rsplit("listening on ", 1)[1].strip()
        env = {**os.environ, "STRIPE_API_KEY": KEY, "STRIPE_API_BASE": base,
               "FC_BALANCES_WAREHOUSE": str(work / "warehouse"), "FC_BALANCES_DISCOVERY": args.discovery,
               "FC_BALANCES_POLL_INTERVAL": "0.5",
               "FC_BALANCES_CHECK_RESERVE_RPS": "0"}  # no funds checks run alongside: the run gets the whole limits
        env.pop("DAGSTER_HOME", None)
        if args.pipeline_rps or args.no_rate_limit:
            # Limits off means off on both sides: paced at the live limits, 100,000 refreshes would take an hour.
            rps = args.pipeline_rps or 10_000.0
            env["FC_BALANCES_MAX_RPS"] = env["FC_BALANCES_MAX_RPS_PER_ENDPOINT"] = str(rps)
        elif args.mode == "live":
            # The bench key looks like a test key; tell the pipeline the limits of the live-mode sandbox.
            env["FC_BALANCES_MAX_RPS"], env["FC_BALANCES_MAX_RPS_PER_ENDPOINT"] = "100", "25"
        command = [str(Path(sys.executable).with_name("fc-balances")), "run"]
        if args.profile or args.memray:  # the CLI's main, not the console script (which leaves at once)
            script = work / "profiled_run.py"
            script.write_text("import sys\nfrom pipelines.cli.main import main\nsys.exit(main(['run']))\n")
            command = ([sys.executable, "-m", "cProfile", "-o", args.profile, str(script)] if args.profile else
                       [sys.executable, "-m", "memray", "run", "-q", "-o", args.memray, str(script)])
        if args.py_spy:
            command = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "speedscope",
                       "--rate", "200", "--idle", "--nonblocking", "-o", args.py_spy, "--", *command]
        if args.time_v:
            command = ["/usr/bin/time", "-v", *command]
        code, wall, lines, errors, started_at, cpu_at = run_timed(command, env)
        stats = admin(base, "stats")
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: a sandbox of 100,000 accounts can be slow to stop
            sandbox.kill()
            sandbox.wait()
    stdout = "\n".join(line for _, line in lines)
    if code != 0:
        print(stdout[-2000:], errors[-2000:], sep="\n")
        print(f"pipeline failed with exit {code}")
        return 1

    global_limit = 100.0 if args.mode == "live" else 25.0
    endpoint_limit = 25.0
    # The necessary requests: one refresh per account, one account list per customer (or a page per 100 accounts
    # in `all` mode), one customer page per 100 customers.
    listing = math.ceil(args.accounts / 100) if args.discovery == "all" else args.customers
    necessary = {"refresh": args.accounts, "list accounts": listing, "list customers": math.ceil(args.customers / 100)}
    per_endpoint = max(necessary.values()) / endpoint_limit
    overall = sum(necessary.values()) / global_limit
    bound = max(per_endpoint, overall) + args.latency
    statuses = stats.get("statuses", {})
    total = sum(statuses.values())
    n429 = stats.get("rate_limited", 0)
    print(f"accounts {args.accounts} customers {args.customers} mode {args.mode} latency {args.latency}s "
          f"discovery {args.discovery} sandbox limits {'off' if args.no_rate_limit else 'on'}")
    print(f"wall time {wall:.1f}s  bound {bound:.1f}s  ratio {wall / bound:.3f}" if not args.no_rate_limit
          else f"wall time {wall:.1f}s")
    print(f"requests {total}  by endpoint {json.dumps(stats.get('requests', {}))}")
    print(f"429 answered {n429} ({100 * n429 / max(total, 1):.2f}% of requests)  statuses {json.dumps(statuses)}")
    print(f"sandbox peak in flight {stats.get('peak_in_flight')}")
    summary = [line for line in stdout.splitlines() if "done in" in line]
    print(summary[0] if summary else "(no summary line)")
    first_request, last_request = (stats[key] - started_at if stats.get(key) else None
                                   for key in ("first_request_at", "last_request_at"))
    print(f"breakdown: {breakdown(lines, wall, first_request, last_request)}")
    refreshes = "POST /v1/financial_connections/accounts/{id}/refresh"
    first_refresh = stats.get("first_request_at_by_endpoint", {}).get(refreshes)
    last_refresh = stats.get("last_request_at_by_endpoint", {}).get(refreshes)
    if first_refresh and last_refresh and last_request is not None:
        # The rate-limited part: what the bound counts from the first refresh to the last one's outcome read back.
        print(f"refreshes: first at {first_refresh - started_at:.2f}s, last at {last_refresh - started_at:.2f}s "
              f"({last_refresh - first_refresh:.2f}s for {args.accounts}); after the last Stripe request "
              f"{wall - last_request:.2f}s to the exit")
    phases = cpu_phases(lines, cpu_at)
    if phases:  # sampled as each line arrived: a phase's figure ends at its last line
        print(f"CPU by phase: {phases}")
    if args.timeline:
        for at, line in lines:
            print(f"  {at:7.2f}s  {line}")
    if args.time_v:
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", errors)
        user = re.search(r"User time \(seconds\): ([\d.]+)", errors)
        system = re.search(r"System time \(seconds\): ([\d.]+)", errors)
        if rss and user and system:
            cpu = float(user.group(1)) + float(system.group(1))
            print(f"pipeline peak RSS {int(rss.group(1)) / 1024:.0f} MiB  CPU {cpu:.1f}s "
                  f"= {1000 * cpu / args.accounts:.3f} ms per account")
    return 0


if __name__ == "__main__":
    sys.exit(main())
