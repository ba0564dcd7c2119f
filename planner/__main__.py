"""``python -m planner`` runs the spinesim command line."""

import sys

from .cli import main

sys.exit(main())
