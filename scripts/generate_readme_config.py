"""Write the README configuration table from ``manifest.json``.

The manifest is the only place parameters are declared; the README table is generated from it so the two
cannot drift. The table replaces whatever sits between ``<!-- config-table:start -->`` and
``<!-- config-table:end -->`` in README.md; nothing else in the README is touched.

Usage::

    python scripts/generate_readme_config.py          # rewrite the block
    python scripts/generate_readme_config.py --check  # exit 1 if the block is stale (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["END_MARKER", "START_MARKER", "main", "render_table", "replace_block"]

ROOT = Path(__file__).resolve().parent.parent
START_MARKER = "<!-- config-table:start -->"
END_MARKER = "<!-- config-table:end -->"


def _cell(text: str) -> str:
    # A pipe would split the Markdown cell; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_TYPE_LABELS = {"string_list": "list of strings"}


def _type(param: Mapping[str, Any]) -> str:
    kind = _TYPE_LABELS.get(str(param["type"]), str(param["type"]))
    if "choices" in param:
        kind += ": " + ", ".join(f"`{choice}`" for choice in param["choices"])
    if "min" in param and "max" in param:
        kind += f" ({_number(param['min'])}..{_number(param['max'])})"
    return kind


def _default(param: Mapping[str, Any]) -> str:
    value = param["default"]
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value) if value else "(empty)"
    if value == "":
        return "(empty)"
    return f"`{_number(value)}`"


def _condition(raw: Mapping[str, str]) -> str:
    ((name, value),) = raw.items()
    return f"`{name}` = `{value}`"


def _required(param: Mapping[str, Any]) -> str:
    """``yes``/``no``, with the condition a parameter's ``only_when`` or ``required_when`` puts on it."""
    only = param.get("only_when")
    if param["required"]:
        return f"yes, if {_condition(only)}" if only else "yes"
    if "required_when" in param:
        return f"yes, if {_condition(param['required_when'])}"
    return f"no ({_condition(only)} only)" if only else "no"


def render_table(manifest: Mapping[str, Any]) -> str:
    """The Markdown table of the manifest's parameters (Parameter | Type | Required | Default | Description).

    A parameter that applies to one ``auth_method`` only, or that is required under a condition although it has a
    default, says so in its Required cell (``yes, if `auth_method` = `oauth2```).

    Args:
        manifest: The decoded ``manifest.json``.

    Returns:
        The table, ending with a newline. Advanced parameters are marked so that first-time users know which
        ones they can ignore.
    """
    lines = [
        "| Parameter | Type | Required | Default | Description |",
        "|---|---|---|---|---|",
    ]
    for param in manifest["parameters"]:
        name = f"`{param['name']}`"
        description = param["description"]
        if param.get("advanced"):
            description = "(Advanced) " + description
        lines.append(
            f"| {name} | {_cell(_type(param))} | {_cell(_required(param))} | "
            f"{_cell(_default(param))} | {_cell(description)} |"
        )
    return "\n".join(lines) + "\n"


def replace_block(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``.

    Raises:
        ValueError: A marker is missing or the end marker comes first.
    """
    start = readme.find(START_MARKER)
    end = readme.find(END_MARKER)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"README must contain {START_MARKER} followed by {END_MARKER}")
    head = readme[: start + len(START_MARKER)]
    return f"{head}\n{table}{readme[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with ``--check``, verify) the README configuration table. Returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale; write nothing")
    parser.add_argument("--manifest", type=Path, default=ROOT / "manifest.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)

    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    current = args.readme.read_text(encoding="utf-8")
    try:
        wanted = replace_block(current, render_table(manifest))
    except ValueError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if current == wanted:
        return 0
    if args.check:
        print(
            f"{args.readme}: configuration table is stale; run python scripts/generate_readme_config.py",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme}: configuration table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
