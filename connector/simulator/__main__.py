"""``python -m connector.simulator``: run the simulator (see :mod:`connector.simulator.cli`)."""

from __future__ import annotations

import sys

from connector.simulator.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
