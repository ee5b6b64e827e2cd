"""`python -m audit2sysmon`: the same command as the `audit2sysmon` script."""

import sys

from .cli import main

sys.exit(main())
