"""``python -m planner`` runs the spinesim command line."""

import sys

from planner.cli.commands import main

sys.exit(main())
