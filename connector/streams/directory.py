"""The directory stream: a full snapshot of users and groups, diffed against the previous one.

Groups (cloud and LDAP) -> their members (bounded concurrency) -> internal users of each domain, with their
groups -> User Inventory Info; the membership snapshot is diffed against the one in the state (Group Management
Add/Remove User) and stored with the last output. A pull is "not due" until ``inventory_interval_minutes`` after
the previous one (docs/mimecast-api.md, "Directory").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from connector.api.client import Listing
from connector.events import MappedEvent
from connector.mapping.snapshot import diff_memberships
from connector.pipeline import Transformer
from connector.registry import registry
from connector.streams.base import CursorKind, Endpoint, RecordKey, Stream, StreamContext, StreamOutput, iso
from connector.streams.directory_state import GroupMembership, InventoryState
from connector.streams.state import StreamState

__all__ = ["DIRECTORY", "DirectoryRun", "DirectorySummary"]

MINUTE_MS: Final = 60_000
USER_BATCH: Final = 1000
GROUP_SOURCES: Final = ("cloud", "ldap")
INVENTORY_TABLE: Final = "user_inventory"
MEMBERSHIP_TABLE: Final = "group_management"
DIRECTORY_NAME: Final = "user_management"  # the event type that selects it

FIND_GROUPS: Final = Endpoint("/api/directory/find-groups", records_at="folders")
GROUP_MEMBERS: Final = Endpoint("/api/directory/get-group-members", records_at="groupMembers")
INTERNAL_DOMAINS: Final = Endpoint("/api/domain/get-internal-domain")
INTERNAL_USERS: Final = Endpoint("/api/user/get-internal-users", records_at="users")


@dataclass
class DirectorySummary:
    """The directory's section of the run summary."""

    users: int = 0
    groups: int = 0
    membership_changes: int = 0
    skipped_until_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON-ready data (``--summary-json``): the figures of ``lines()``."""
        return {
            "users": self.users,
            "groups": self.groups,
            "membership_changes": self.membership_changes,
            "not_due_until": iso(self.skipped_until_ms) if self.skipped_until_ms else None,
        }

    def lines(self) -> list[str]:
        """The stream's lines of the human summary."""
        if self.skipped_until_ms:
            return [f"  directory: not due until {iso(self.skipped_until_ms)}"]
        if self.groups or self.users:
            return [
                f"  directory: {self.users} users, {self.groups} groups, {self.membership_changes} membership changes"
            ]
        return []


class DirectoryRun:
    """One directory pull (or none, when it is not due yet)."""

    def __init__(self, context: StreamContext, state: InventoryState) -> None:
        self.context = context
        self.state = state
        self.interval_ms = context.config.inventory_interval_minutes * MINUTE_MS
        self.summary = DirectorySummary()

    def _records(self, listing: Listing) -> Iterator[Any]:
        for page in self.context.client.pages([listing], event_type=DIRECTORY_NAME):
            yield from page.records

    def outputs(self) -> Iterator[StreamOutput]:
        """Pull everything, yield the users in batches, then the membership changes with the new snapshot."""
        state, transformer = self.state, self.context.transformer
        now = self.context.now_ms()
        if state.collected_at_ms is not None and state.collected_at_ms > now:
            self.context.warn(
                f"directory collected_at {iso(state.collected_at_ms)} lies after now ({iso(now)}): the clock went "
                "back or the checkpoint is wrong; the directory is pulled now",
                "directory collected_at after now",
                stored=iso(state.collected_at_ms),
                now=iso(now),
            )
        elif state.collected_at_ms is not None and now - state.collected_at_ms < self.interval_ms:
            self.summary.skipped_until_ms = state.collected_at_ms + self.interval_ms
            return
        groups = self._groups()
        memberships = self._members(groups)
        self.summary.groups = len(groups)
        member_of: dict[str, list[dict[str, str]]] = defaultdict(list)
        for group_id, (name, members) in memberships.items():
            for address in members:
                member_of[address].append({"id": group_id, "description": name})
        inventory_uid = registry().table(INVENTORY_TABLE).class_uid
        pending: list[MappedEvent] = []
        for domain in self._records(INTERNAL_DOMAINS.listing([])):
            domain_name = domain.get("domain") if isinstance(domain, dict) else None
            if not isinstance(domain_name, str) or not domain_name:
                continue
            users = self._records(INTERNAL_USERS.listing([{"domain": domain_name}]))
            with_groups = (_with_groups(user, member_of) for user in users)
            for mapped in transformer.users(with_groups, now, start=self.summary.users + 1):
                pending.append(mapped)
                if len(pending) >= USER_BATCH:
                    yield StreamOutput(INVENTORY_TABLE, inventory_uid, [m.event for m in pending], None)
                    pending = []
            self.summary.users = transformer.report.emitted[INVENTORY_TABLE]
        if pending:
            yield StreamOutput(INVENTORY_TABLE, inventory_uid, [m.event for m in pending], None)
        # GroupMembership normalises members (lower-cased, de-duplicated, sorted): the stored form is the snapshot.
        snapshot = {gid: GroupMembership(name, tuple(members)) for gid, (name, members) in memberships.items()}
        new_state = InventoryState(collected_at_ms=now, memberships=snapshot)
        changes = []
        if state.memberships is not None:
            diff = diff_memberships(state.memberships, snapshot)
            baseline = state.collected_at_ms if state.collected_at_ms is not None else now
            diff_events = transformer.mapper.map_membership_changes(diff, now, baseline_ms=baseline)
            changes = [m for m in diff_events if transformer.accept(m)]
        self.summary.membership_changes = len(changes)
        membership_uid = registry().table(MEMBERSHIP_TABLE).class_uid
        yield StreamOutput(MEMBERSHIP_TABLE, membership_uid, [m.event for m in changes], new_state)

    def _groups(self) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        for source in GROUP_SOURCES:
            for group in self._records(FIND_GROUPS.listing([{"query": "", "source": source}])):
                if isinstance(group, dict) and isinstance(group.get("id"), str):
                    groups.setdefault(group["id"], group)
        return list(groups.values())

    def _members(self, groups: list[dict[str, Any]]) -> dict[str, tuple[str, list[str]]]:
        def read(group: dict[str, Any]) -> tuple[str, tuple[str, list[str]]]:
            members = [
                m["emailAddress"].lower()
                for m in self._records(GROUP_MEMBERS.listing([{"id": group["id"]}]))
                if isinstance(m, dict) and isinstance(m.get("emailAddress"), str)
            ]
            return group["id"], (str(group.get("description") or group["id"]), members)

        with ThreadPoolExecutor(max_workers=self.context.config.concurrency, thread_name_prefix="members") as pool:
            return dict(pool.map(read, groups))


def _with_groups(user: object, member_of: Mapping[str, list[dict[str, str]]]) -> object:
    if isinstance(user, dict) and isinstance(user.get("emailAddress"), str):
        groups = member_of.get(user["emailAddress"].lower())
        if groups:
            return {**user, "groups": groups}
    return user


def _probe(now_ms: int) -> Listing:
    """One cloud group."""
    return FIND_GROUPS.listing([{"query": "", "source": "cloud"}])


def _start(context: StreamContext, state: StreamState) -> DirectoryRun:
    assert isinstance(state, InventoryState)
    return DirectoryRun(context, state)


def _map_users(transformer: Transformer, records: Iterable[object], collected_ms: int) -> Iterator[MappedEvent]:
    return transformer.users(records, collected_ms, start=1)


DIRECTORY: Final = Stream(
    name=DIRECTORY_NAME,
    endpoints=(FIND_GROUPS, GROUP_MEMBERS, INTERNAL_DOMAINS, INTERNAL_USERS),
    record_key=RecordKey.NONE,
    time_field=None,
    cursor=CursorKind.SNAPSHOT,
    mapping_tables=("user_inventory", "membership"),
    tables=(INVENTORY_TABLE, MEMBERSHIP_TABLE),
    parse_state=InventoryState.parse,
    initial_state=InventoryState,
    probe=_probe,
    start=_start,
    map_sources={"users": _map_users},
)
