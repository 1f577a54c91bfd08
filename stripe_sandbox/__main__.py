"""`python -m stripe_sandbox`: the same as `fc-balances sandbox`."""

import sys

from stripe_sandbox.cli import main

sys.exit(main())
