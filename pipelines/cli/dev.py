"""`fc-balances dev`: the Dagster UI on this code location."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipelines.cli.common import say
from pipelines.cli.sandbox import SANDBOX_KEY, built_in_sandbox
from pipelines.settings import read


def cmd_dev(args: argparse.Namespace) -> int:
    """`dagster dev` on this code location, against the built-in sandbox unless STRIPE_API_KEY is set."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [dagster, "dev", "-w", "workspace.yaml", "--host", args.host, "--port", str(args.port)]
    if read("STRIPE_API_KEY"):
        return subprocess.call(command, env=env)  # noqa: S603
    with built_in_sandbox(args.demo_customers, args.seed) as url:
        say(f"no STRIPE_API_KEY set: the Dagster UI will use the built-in sandbox at {url}")
        return subprocess.call(command, env={**env, "STRIPE_API_KEY": SANDBOX_KEY, "STRIPE_API_BASE": url})  # noqa: S603
