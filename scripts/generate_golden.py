"""Regenerate the ``expected`` side of every golden scenario in tests/golden/ (``make golden``).

The ``input`` of each file is the source of truth; this rewrites ``expected``/``error`` from the current mapping.
Review the diff before committing: golden files are the mapping's review surface, never to be blindly accepted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from connector.ocsf.validate import EventValidator
from connector.testing import golden_mapper, run_scenario

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"


def render(data: dict[str, object]) -> str:
    """The canonical text of a scenario file (sorted keys, two-space indent)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    mapper, validator = golden_mapper(), EventValidator()
    changed = 0
    for path in sorted(GOLDEN.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        cap = data.get("raw_data_max_bytes", 0)
        data.update(run_scenario(mapper, validator, data["source"], data["input"], raw_data_max_bytes=cap))
        text = render(data)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed += 1
            print(f"updated {path.relative_to(GOLDEN)}")
    print(f"{changed} scenario files changed; review with `git diff tests/golden`", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
