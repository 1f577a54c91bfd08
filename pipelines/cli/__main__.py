"""`python -m pipelines.cli`: the same command line as the console script."""

import sys

from pipelines.cli.main import main

sys.exit(main())
