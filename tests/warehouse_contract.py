"""One place for tests to check a warehouse: our own contract check, plus the shared tool when it is laid out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipelines.contract.check import check_warehouse

# CI lays the workplace's shared/ folder beside the checkout; a plain clone has only our own check.
SHARED_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "check_warehouse.py"


def warehouse_problems(warehouse: Path) -> list[str]:
    problems = check_warehouse(warehouse)
    if SHARED_TOOL.is_file():
        done = subprocess.run([sys.executable, str(SHARED_TOOL), str(warehouse)], capture_output=True, text=True)
        if done.returncode != 0:
            problems.append(f"check_warehouse.py failed: {(done.stdout + done.stderr).strip()[-2000:]}")
    return problems
