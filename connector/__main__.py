"""``python -m connector`` runs the command line."""

from __future__ import annotations

import sys

from connector.cli import main

sys.exit(main())
