"""Helpers shared by the golden tests and ``make golden``: run one scenario with a pinned clock.

Shipped with the package (as structlog ships ``structlog.testing``) so the generator script and the test suite
compute expectations the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connector.errors import MappingError
from connector.mapping.email import EMAIL_SOURCES, map_email
from connector.mapping.mapper import Mapper
from connector.mapping.snapshot import GroupMembers, diff_memberships
from connector.ocsf.validate import EventValidator
from connector.pipeline import email_record_key
from connector.raw_data import with_raw_data

__all__ = ["GOLDEN_CLOCK_MS", "golden_mapper", "run_scenario"]

GOLDEN_CLOCK_MS: Final = 1_780_000_000_000  # 2026-05-28T20:26:40Z: collection time of every golden event


def golden_mapper() -> Mapper:
    """A mapper with the pinned clock that emits Base Events too, so every layout has an expectation."""
    return Mapper(clock_ms=lambda: GOLDEN_CLOCK_MS, emit_other=True)


def _snapshot(data: Mapping[str, Any]) -> dict[str, GroupMembers]:
    return {gid: GroupMembers(g["name"], frozenset(g["members"])) for gid, g in data.items()}


def _email_key(source: str, raw: Any) -> str:
    key = email_record_key(source, raw)
    if key is None:
        raise MappingError(f"{source} record has no key (not an object, or no id)", record_id="#1")
    return key


def run_scenario(
    mapper: Mapper, validator: EventValidator, source: str, raw: Any, *, raw_data_max_bytes: int = 0
) -> dict[str, Any]:
    """Map one scenario's input; returns ``{"expected": event | [events] | None, "error": str | None}``.

    Every event returned has passed the validator; an invalid one is returned as an error instead.
    ``raw_data_max_bytes`` (a scenario's optional key of that name) is the parameter: the original record goes
    into ``raw_data`` as the ``Transformer`` puts it there, after mapping and before validation.
    """
    try:
        if source == "audit":
            mapped = mapper.map_audit(raw, 1)
            events = [mapped.event] if mapped else []
            for event in events:
                with_raw_data(event, raw, raw_data_max_bytes)
        elif source == "users":
            events = [mapper.map_user(raw, 1, GOLDEN_CLOCK_MS).event]
            with_raw_data(events[0], raw, raw_data_max_bytes)
        elif source in EMAIL_SOURCES:
            events = [map_email(source, raw, _email_key(source, raw), GOLDEN_CLOCK_MS).event]
            with_raw_data(events[0], raw, raw_data_max_bytes)
        elif source == "membership":
            changes = diff_memberships(_snapshot(raw["previous"]), _snapshot(raw["current"]))
            events = [
                m.event for m in mapper.map_membership_changes(changes, GOLDEN_CLOCK_MS, baseline_ms=GOLDEN_CLOCK_MS)
            ]
        else:
            raise ValueError(f"unknown scenario source {source!r}")
    except MappingError as exc:
        return {"expected": None, "error": str(exc)}
    for event in events:
        problems = validator.problems(event)
        if problems:
            return {"expected": None, "error": f"invalid event: {problems[0]}"}
    if source == "membership":
        return {"expected": events, "error": None}
    return {"expected": events[0] if events else None, "error": None}
