"""The `fc-balances` console script: `funds-check` goes straight to its light module, everything else to the CLI."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pipelines import startup

# The batch commands that load Dagster: when they are done, the interpreter's teardown of Dagster's, DuckDB's and
# Arrow's modules only costs time (0.5-1.5 s measured after `fc-balances run`), so they leave without it.
_FAST_EXIT_COMMANDS = ("run", "marts")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    startup.begin()
    try:
        if args and args[0] == "funds-check":
            # A payments service waits on this command: skip the CLI's imports (subprocess, logging, urllib, ...).
            from pipelines.cli.funds import main as funds_check_main

            startup.end()
            return funds_check_main(args[1:])
        from pipelines.cli.main import main as cli_main

        if not (args and args[0] in _FAST_EXIT_COMMANDS):
            startup.end()  # the long-lived commands (serve, sandbox, dev) collect as usual from here on
        # `run` and `marts` end the start-up once their Dagster job is loaded (cli/jobs.py).
        code = cli_main(args)
    finally:
        startup.end()
    if argv is None and args and args[0] in _FAST_EXIT_COMMANDS:
        _leave(code)
    return code


def _leave(code: int) -> NoReturn:
    """Exit at once: logs and standard streams flushed, every file and DuckDB connection already closed by its
    `with` block and the Dagster instance disposed (cli/jobs.py), so the teardown skipped frees memory only."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
