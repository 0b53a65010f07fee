"""`python -m pinnflow.cli ...`: the same as the `pinnflow` command."""

import sys

from pinnflow.cli import main

sys.exit(main())
