"""The `fc-balances` console script: `funds-check` goes straight to its light module, everything else to the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "funds-check":
        # A payments service waits on this command: skip the CLI's imports (subprocess, logging, urllib, ...).
        from pipelines.cli.funds import main as funds_check_main

        return funds_check_main(args[1:])
    from pipelines.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
