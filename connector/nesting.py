"""How deeply a decoded JSON value nests: one iterative, bounded check shared by every record kind.

The JSON parsers accept 1024 levels of nesting (orjson) or more, but orjson serialises at most 254 levels: a
record (or a value the mapping copied into ``unmapped``) nested deeper makes every JSON sink raise ``TypeError``
in the middle of a run. No Mimecast record nests more than a few levels, so ``MAX_RECORD_DEPTH`` refuses the
absurd ones before mapping, far below any serialiser's limit (docs/hardening.md, "Records").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["MAX_RECORD_DEPTH", "nests_deeper_than"]

MAX_RECORD_DEPTH: Final = 64
"""Levels of objects and arrays a record may have (the record itself is level 1)."""


def nests_deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` holds objects / arrays more than ``limit`` levels deep (a scalar is level 0, ``{}`` 1).

    Iterative (no recursion, whatever the depth), each container visited once, and it stops at the first
    container past ``limit``: linear in the size of the value.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
