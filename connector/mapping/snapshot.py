"""Group-membership snapshots of the directory and the pure diff between two of them.

Mimecast's directory API has no change feed: each inventory pull is a full snapshot. Comparing the previous
snapshot (kept in the checkpoint) with the current one yields the Add User / Remove User changes that become
Group Management events.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["GroupLike", "GroupMembers", "MembershipChange", "MembershipSnapshot", "diff_memberships"]


@dataclass(frozen=True)
class GroupMembers:
    """One group in a snapshot: its display name and the lower-cased addresses of its members."""

    name: str
    members: frozenset[str]


class GroupLike(Protocol):
    """Anything with a group name and its members' lower-cased addresses (``GroupMembers``, or the checkpoint's
    ``GroupMembership``, whose members are a sorted tuple)."""

    @property
    def name(self) -> str: ...

    @property
    def members(self) -> Collection[str]: ...


MembershipSnapshot = Mapping[str, GroupLike]
"""Group id → group. Compact by design: the checkpoint stores one between runs."""


@dataclass(frozen=True, order=True)
class MembershipChange:
    """A member that appeared in (``added``) or disappeared from a group between two snapshots."""

    group_id: str
    member: str
    added: bool
    group_name: str


def diff_memberships(previous: MembershipSnapshot, current: MembershipSnapshot) -> list[MembershipChange]:
    """Every membership added or removed between ``previous`` and ``current``, in a stable order.

    A group missing from ``current`` loses all its members; a new group gains all of them. The caller must only
    diff complete snapshots (a partial pull would look like mass removals) and must skip the very first run.
    """
    changes: list[MembershipChange] = []
    for group_id in sorted(previous.keys() | current.keys()):
        before = previous.get(group_id)
        after = current.get(group_id)
        old = frozenset(before.members) if before else frozenset()
        new = frozenset(after.members) if after else frozenset()
        known = after or before
        name = known.name if known is not None else group_id
        changes.extend(MembershipChange(group_id, m, True, name) for m in sorted(new - old))
        changes.extend(MembershipChange(group_id, m, False, name) for m in sorted(old - new))
    return changes
