"""A seeded, sized, deterministic Mimecast tenant: domains, users, groups, memberships and audit events.

Users, groups and memberships are materialised (tens of thousands at most). Audit events are never stored:
event ``i`` is computed from ``(seed, i)`` alone. Its time is ``start + floor((i + u_i) * spacing)`` with a
deterministic jitter ``u_i`` in ``[0, 1)``, so times never decrease with ``i`` and a time window maps to an
index range by binary search; its layout comes from a seeded, shuffled cycle of layout slots, so counting the
records of some categories in an index range is arithmetic. A 1M-event tenant therefore costs a few kilobytes,
and a page of 500 records costs 500 record renderings.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from connector.simulator.layouts import LAYOUTS, Layout, Rng, format_event_time, mix64

__all__ = [
    "SIZE_PRESETS",
    "Group",
    "Member",
    "MembershipChanges",
    "Tenant",
    "TenantSpec",
    "User",
]

_DAY = 86400


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """What tenant to build.

    Attributes:
        seed: everything derives from it; the same spec builds the same tenant.
        users: number of internal addresses (a few are aliases such as ``finance@``).
        groups: number of directory groups (folders).
        domains: number of internal domains.
        audit_events_per_day: audit event rate; ``days * audit_events_per_day`` events in all.
        days: how many days of history the tenant holds.
        start: epoch second of the first event; default ``end - days``.
        end: epoch second the history ends at (exclusive); default the clock's now when the tenant is built.
        max_group_size: cap on the members of one group.
    """

    seed: int = 1
    users: int = 200
    groups: int = 20
    domains: int = 2
    audit_events_per_day: int = 2000
    days: float = 7.0
    start: float | None = None
    end: float | None = None
    max_group_size: int = 400

    @property
    def audit_event_count(self) -> int:
        """Total number of audit events."""
        return round(self.audit_events_per_day * self.days)


SIZE_PRESETS: dict[str, TenantSpec] = {
    "tiny": TenantSpec(users=30, groups=6, domains=1, audit_events_per_day=300, days=3),
    "small": TenantSpec(users=200, groups=20, domains=2, audit_events_per_day=2000, days=7),
    "medium": TenantSpec(users=2000, groups=100, domains=3, audit_events_per_day=20000, days=10),  # 200k events
    "large": TenantSpec(users=20000, groups=500, domains=5, audit_events_per_day=100000, days=10),  # 1M events
}


@dataclass(frozen=True, slots=True)
class User:
    """An internal address as ``/api/user/get-internal-users`` returns it."""

    email_address: str
    name: str
    alias: bool
    domain: str
    address_type: str
    source: str

    def to_api(self) -> dict[str, object]:
        """The API's JSON shape."""
        return {
            "emailAddress": self.email_address,
            "name": self.name,
            "alias": self.alias,
            "domain": self.domain,
            "addressType": self.address_type,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Member:
    """A group member as ``/api/directory/get-group-members`` returns it."""

    email_address: str
    name: str
    domain: str
    type: str
    internal: bool

    def to_api(self) -> dict[str, object]:
        """The API's JSON shape."""
        return {
            "emailAddress": self.email_address,
            "name": self.name,
            "domain": self.domain,
            "type": self.type,
            "internal": self.internal,
        }


@dataclass(slots=True)
class Group:
    """A directory group (``folder``); ``members`` changes when memberships are mutated."""

    id: str
    description: str
    source: str
    parent_id: str
    folder_count: int
    members: list[Member] = field(default_factory=list)

    def to_api(self) -> dict[str, object]:
        """The ``find-groups`` JSON shape."""
        return {
            "id": self.id,
            "description": self.description,
            "source": self.source,
            "parentId": self.parent_id,
            "userCount": len(self.members),
            "folderCount": self.folder_count,
        }


@dataclass(frozen=True, slots=True)
class MembershipChanges:
    """What :meth:`Tenant.mutate_memberships` changed: ``(group id, emailAddress)`` pairs."""

    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]


_FIRST = (
    "Alice",
    "Bob",
    "Carol",
    "Dana",
    "Eve",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oscar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
)
_LAST = (
    "Ng",
    "Okafor",
    "Diaz",
    "Lee",
    "Smith",
    "Khan",
    "Garcia",
    "Tanaka",
    "Silva",
    "Brown",
    "Mensah",
    "Novak",
    "Rossi",
    "Haddad",
    "Berg",
    "Patel",
    "Murphy",
    "Santos",
    "Larsen",
    "Aziz",
    "Kowalski",
    "Ivanova",
    "Chen",
    "Lopez",
    "Demir",
    "Walsh",
)
_TEAMS = ("finance", "hr", "it-helpdesk", "sales", "legal", "payroll", "support", "marketing", "security")
_GROUP_WORDS = (
    "Finance Approvers",
    "VIP Protection",
    "Sales EMEA",
    "Sales Americas",
    "Engineering",
    "HR Partners",
    "Legal",
    "IT Admins",
    "Executives",
    "Contractors",
    "Marketing",
    "Support Tier 1",
    "Support Tier 2",
    "Payroll",
    "Security Team",
    "Facilities",
    "Procurement",
    "Data Protection",
    "Board",
    "Interns",
)
_DOMAIN_NAMES = (
    "contoso.example.org",
    "fabrikam.example.com",
    "northwind.example.net",
    "tailspin.example.org",
    "woodgrove.example.com",
    "adatum.example.net",
    "litware.example.org",
    "proseware.example.com",
)


def _opaque(prefix: str, *parts: object) -> str:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=18).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Tenant:
    """The generated tenant. Audit events are computed on demand; see the module docstring."""

    def __init__(self, spec: TenantSpec, *, now: float | None = None) -> None:
        """Build the tenant.

        Args:
            spec: what to build.
            now: epoch seconds used as ``end`` when the spec gives neither ``start`` nor ``end``.
        """
        self.spec = spec
        rnd = random.Random(spec.seed)
        span = spec.days * _DAY
        if spec.start is not None:
            start = float(spec.start)
        else:
            end = spec.end if spec.end is not None else (now if now is not None else time.time())
            start = float(end) - span
        self.start: int = int(start)
        self.event_count: int = spec.audit_event_count
        self.spacing: float = span / self.event_count if self.event_count else 1.0
        self._time_salt = mix64(spec.seed * 7919 + 11)
        self._record_salt = mix64(spec.seed * 104729 + 5)
        self._id_salt = mix64(spec.seed * 15485863 + 3)
        self._id_salt2 = mix64(spec.seed * 32452843 + 17)

        self.domains: list[str] = self._make_domains(spec.domains)
        self.users: list[User] = self._make_users(rnd)
        self._users_by_domain: dict[str, list[User]] = {d: [] for d in self.domains}
        for user in self.users:
            self._users_by_domain[user.domain].append(user)
        people = [(u.email_address, u.name) for u in self.users if not u.alias]
        if not people:
            people = [(f"admin@{self.domains[0]}", "Tenant Admin")]
        self._people: list[tuple[str, str]] = people
        self._admins: list[tuple[str, str]] = [(f"admin@{self.domains[0]}", "Contoso Admin"), *people[:3]]
        self.groups: list[Group] = self._make_groups(rnd)
        self._groups_by_id: dict[str, Group] = {g.id: g for g in self.groups}
        self._group_names: list[str] = [g.description for g in self.groups]

        # The layout cycle: every layout appears ``weight`` times per cycle, in a seeded order.
        pattern: list[int] = []
        for number, layout in enumerate(LAYOUTS):
            pattern.extend([number] * layout.weight)
        rnd.shuffle(pattern)
        self._pattern: list[int] = pattern
        self._match_cache: dict[frozenset[str] | None, list[int]] = {}

    # --- directory ---------------------------------------------------------------------------------------

    @staticmethod
    def _make_domains(count: int) -> list[str]:
        names = list(_DOMAIN_NAMES[: max(1, count)])
        for extra in range(len(names), count):
            names.append(f"domain{extra}.example.org")
        return names

    def _make_users(self, rnd: random.Random) -> list[User]:
        seen: set[str] = set()
        users: list[User] = []
        for number in range(self.spec.users):
            domain = self.domains[number % len(self.domains)]
            if number % 50 == 7:
                team = _TEAMS[(number // 50) % len(_TEAMS)]
                local, name, alias = team, f"{team.replace('-', ' ').title()} Team", True
            else:
                first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
                local, name, alias = f"{first}.{last}".lower(), f"{first} {last}", False
            candidate, suffix = local, 1
            while f"{candidate}@{domain}" in seen:
                suffix += 1
                candidate = f"{local}{suffix}"
            email = f"{candidate}@{domain}"
            seen.add(email)
            source = "ldap" if rnd.random() < 0.7 else "cloud"
            users.append(User(email, name, alias, domain, "internal", source))
        return users

    def _make_groups(self, rnd: random.Random) -> list[Group]:
        seed = self.spec.seed
        root_id = _opaque("eNoVzE", seed, "root")
        groups: list[Group] = []
        children: dict[str, int] = {}
        for number in range(self.spec.groups):
            base = _GROUP_WORDS[number % len(_GROUP_WORDS)]
            name = base if number < len(_GROUP_WORDS) else f"{base} {number // len(_GROUP_WORDS) + 1}"
            gid = _opaque("eNoVzE", seed, "group", number)
            # A shallow tree: most groups hang off the root, some under an earlier group.
            parent = groups[rnd.randrange(len(groups))].id if groups and rnd.random() < 0.25 else root_id
            children[parent] = children.get(parent, 0) + 1
            source = "ldap" if rnd.random() < 0.6 else "cloud"
            groups.append(Group(gid, name, source, parent, 0))
        for group in groups:
            group.folder_count = children.get(group.id, 0)
        for group in groups:
            group.members = self._make_members(rnd)
        return groups

    def _member_of(self, user: User, manual: bool) -> Member:
        return Member(user.email_address, user.name, user.domain, "created_manually" if manual else "ldap", True)

    def _make_members(self, rnd: random.Random) -> list[Member]:
        if not self.users:
            return []
        roll = rnd.random()
        if roll < 0.1:
            size = 0
        elif roll < 0.9:
            size = rnd.randint(1, 40)
        else:
            size = rnd.randint(40, self.spec.max_group_size)
        size = min(size, len(self.users))
        picks = rnd.sample(range(len(self.users)), size)
        members = [self._member_of(self.users[p], rnd.random() < 0.5) for p in sorted(picks)]
        if rnd.random() < 0.2:
            members.append(
                Member(
                    f"partner{rnd.randrange(100)}@partner.example.com",
                    "External Partner",
                    "partner.example.com",
                    "created_manually",
                    False,
                )
            )
        return members

    def users_in(self, domain: str) -> Sequence[User]:
        """Internal addresses of one domain (case-insensitive); empty for an unknown domain."""
        return self._users_by_domain.get(domain.lower(), [])

    def group(self, group_id: str) -> Group | None:
        """The group with that id, if any."""
        return self._groups_by_id.get(group_id)

    def find_groups(self, query: str, source: str) -> list[Group]:
        """Groups whose name contains ``query`` (case-insensitive), of ``source`` if given."""
        needle = query.lower()
        return [
            g
            for g in self.groups
            if (not needle or needle in g.description.lower()) and (not source or g.source == source)
        ]

    def mutate_memberships(self, seed: int, changes: int = 10) -> MembershipChanges:
        """Add and remove some members, deterministically from ``seed``; return what changed."""
        rnd = random.Random(f"mutate:{self.spec.seed}:{seed}")
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        if not self.groups or not self.users:
            return MembershipChanges((), ())
        for step in range(changes):
            group = self.groups[rnd.randrange(len(self.groups))]
            if step % 2 == 0 or not group.members:
                present = {m.email_address for m in group.members}
                user = self.users[rnd.randrange(len(self.users))]
                if user.email_address in present:
                    continue
                group.members.append(self._member_of(user, True))
                added.append((group.id, user.email_address))
            else:
                member = group.members.pop(rnd.randrange(len(group.members)))
                removed.append((group.id, member.email_address))
        return MembershipChanges(tuple(added), tuple(removed))

    # --- render context ---------------------------------------------------------------------------------

    @property
    def event_people(self) -> Sequence[tuple[str, str]]:
        """(emailAddress, name) of ordinary mailbox users, for event texts."""
        return self._people

    @property
    def admins(self) -> Sequence[tuple[str, str]]:
        """(emailAddress, name) of administrators, for event texts."""
        return self._admins

    @property
    def group_names(self) -> Sequence[str]:
        """Group names, for event texts."""
        return self._group_names

    @property
    def primary_domain(self) -> str:
        """The first internal domain."""
        return self.domains[0]

    # --- audit events -----------------------------------------------------------------------------------

    def event_time(self, index: int) -> int:
        """Epoch second of audit event ``index`` (non-decreasing in ``index``)."""
        jitter = (mix64(self._time_salt ^ index) >> 11) / 9007199254740992.0
        return self.start + int((index + jitter) * self.spacing)

    def first_index_at_or_after(self, epoch: int) -> int:
        """The smallest index whose time is ``>= epoch`` (``event_count`` if none)."""
        lo, hi = 0, self.event_count
        # Narrow the search around the index the time implies; times are within one spacing of it.
        guess = int((epoch - self.start) / self.spacing) if self.spacing else 0
        margin = int(2 / self.spacing) + 4 if self.spacing else 4
        if guess - margin >= 0 and self.event_time(guess - margin) < epoch:
            lo = guess - margin
        if guess + margin < self.event_count and self.event_time(guess + margin) >= epoch:
            hi = guess + margin
        while lo < hi:
            mid = (lo + hi) // 2
            if self.event_time(mid) < epoch:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def layout_of(self, index: int) -> Layout:
        """The layout of audit event ``index``."""
        return LAYOUTS[self._pattern[index % len(self._pattern)]]

    def audit_id(self, index: int) -> str:
        """The opaque, unique id of audit event ``index``.

        ``mix64`` is a bijection on 64-bit integers, so the first half alone already makes ids unique.
        """
        raw = mix64(self._id_salt ^ index).to_bytes(8, "big") + mix64(self._id_salt2 ^ index).to_bytes(8, "big")
        return "eNqrVkqp" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def audit_record(self, index: int) -> dict[str, object]:
        """Audit event ``index`` as the API returns it."""
        layout = self.layout_of(index)
        epoch = self.event_time(index)
        rng = Rng(mix64(self._record_salt ^ index))
        user, info = layout.render(rng, self, epoch)
        return {
            "id": self.audit_id(index),
            "auditType": layout.audit_type,
            "category": layout.category,
            "eventTime": format_event_time(epoch),
            "user": user,
            "eventInfo": info,
        }

    def _matching_slots(self, categories: frozenset[str] | None) -> list[int]:
        slots = self._match_cache.get(categories)
        if slots is None:
            slots = [
                pos
                for pos, number in enumerate(self._pattern)
                if categories is None or LAYOUTS[number].category in categories
            ]
            self._match_cache[categories] = slots
        return slots

    def count_matching_before(self, index: int, categories: frozenset[str] | None) -> int:
        """How many events in ``[0, index)`` are of one of ``categories`` (all when ``None``)."""
        slots = self._matching_slots(categories)
        cycles, rest = divmod(index, len(self._pattern))
        return cycles * len(slots) + bisect.bisect_left(slots, rest)

    def nth_matching(self, rank: int, categories: frozenset[str] | None) -> int:
        """The index of the ``rank``-th (0-based, from index 0) event of one of ``categories``."""
        slots = self._matching_slots(categories)
        cycles, rest = divmod(rank, len(slots))
        return cycles * len(self._pattern) + slots[rest]

    def matches(self, index: int, categories: frozenset[str] | None) -> bool:
        """Whether event ``index`` is of one of ``categories``."""
        return categories is None or self.layout_of(index).category in categories

    def categories(self) -> list[str]:
        """Every category the tenant produces."""
        return sorted({layout.category for layout in LAYOUTS})

    def iter_records(self, indices: Iterable[int]) -> Iterable[dict[str, object]]:
        """Render the given audit events."""
        for index in indices:
            yield self.audit_record(index)
