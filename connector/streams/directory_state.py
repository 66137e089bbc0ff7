"""The directory stream's state: when the directory was last read, and every group's members at that pull.

The snapshot is what the next pull diffs against (Group Management Add/Remove User events between two pulls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from connector.streams.state import InvalidState, epoch_ms, exact_object

__all__ = ["GroupMembership", "InventoryState"]


@dataclass(frozen=True)
class GroupMembership:
    """One group's name and members at the last directory pull.

    Members are stored lower-cased, de-duplicated and sorted: Mimecast addresses are case-insensitive, the
    checkpoint stays compact, and two pulls compare with plain set/tuple equality.
    """

    name: str
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(sorted({member.lower() for member in self.members})))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "members": list(self.members)}

    @classmethod
    def parse(cls, data: object, where: str) -> GroupMembership:
        """Strictly parse the JSON form (``InvalidState`` naming ``where``)."""
        obj = exact_object(data, where, {"name", "members"})
        name, members = obj["name"], obj["members"]
        if not isinstance(name, str):
            raise InvalidState(f"{where}.name must be a string")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise InvalidState(f"{where}.members must be a list of strings")
        return cls(name=name, members=tuple(members))


@dataclass(frozen=True)
class InventoryState:
    """Directory collection progress.

    Attributes:
        collected_at_ms: When the last complete directory pull finished (epoch ms); ``None`` before any.
        memberships: Group id -> ``GroupMembership`` from that pull; ``None`` when never read.
    """

    collected_at_ms: int | None = None
    memberships: Mapping[str, GroupMembership] | None = None

    def __post_init__(self) -> None:
        if self.memberships is not None:
            object.__setattr__(self, "memberships", MappingProxyType(dict(self.memberships)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (groups sorted by id)."""
        memberships = (
            None
            if self.memberships is None
            else {key: value.to_dict() for key, value in sorted(self.memberships.items())}
        )
        return {"collected_at_ms": self.collected_at_ms, "memberships": memberships}

    @classmethod
    def parse(cls, data: object, where: str) -> InventoryState:
        """Strictly parse the JSON form (``InvalidState`` naming ``where``)."""
        obj = exact_object(data, where, {"collected_at_ms", "memberships"})
        collected = epoch_ms(obj["collected_at_ms"], f"{where}.collected_at_ms", optional=True)
        raw = obj["memberships"]
        if raw is None:
            return cls(collected_at_ms=collected, memberships=None)
        if not isinstance(raw, dict):
            raise InvalidState(f"{where}.memberships must be an object or null")
        memberships = {key: GroupMembership.parse(value, f"{where}.memberships[{key!r}]") for key, value in raw.items()}
        return cls(collected_at_ms=collected, memberships=memberships)
