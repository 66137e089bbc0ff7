"""Audit-event layouts the simulator produces, and its own date-time helpers.

Each :class:`Layout` is one ``auditType`` rendered in one ``eventInfo`` shape seen in Mimecast tenants
(see ``docs/mimecast-api.md``): the comma-separated authentication texts, the comma-less
``Action Performed`` texts, the password-reset texts, texts embedding JSON, multi-line texts and texts with no
fields at all, plus a few audit types a parser will not know. The simulator deliberately formats times itself
(it shares no code with the connector it tests).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "LAYOUTS",
    "Layout",
    "RenderContext",
    "Rng",
    "format_event_time",
    "mix64",
    "parse_request_time",
]

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash of ``value``."""
    value = (value + _GOLDEN) & _M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _M64
    return value ^ (value >> 31)


class Rng:
    """A tiny deterministic generator (SplitMix64 stream); far cheaper to create than ``random.Random``."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _M64

    def next(self) -> int:
        """The next 64-bit value."""
        self._state = (self._state + _GOLDEN) & _M64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """A value in ``[0, n)``."""
        return self.next() % n

    def unit(self) -> float:
        """A float in ``[0, 1)``."""
        return (self.next() >> 11) / 9007199254740992.0

    def choice(self, seq: Sequence[str]) -> str:
        """One element of a non-empty string sequence."""
        return seq[self.next() % len(seq)]


# --- time -------------------------------------------------------------------------------------------------

_REQUEST_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})([+-])(\d{2})(\d{2})\Z")


def format_event_time(epoch: int) -> str:
    """``yyyy-MM-ddTHH:mm:ss+0000`` for an integer epoch second (Mimecast's colon-less offset)."""
    t = time.gmtime(epoch)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}+0000"


def parse_request_time(text: object) -> int | None:
    """Epoch seconds of a request's ``startDateTime``/``endDateTime``; ``None`` if not in the strict format.

    Only the colon-less ``±hhmm`` offset is accepted, as the real API documents; RFC 3339 (``+00:00``, ``Z``)
    is refused so a client that sends it finds out here rather than in production.
    """
    if not isinstance(text, str):
        return None
    m = _REQUEST_TIME.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        return None
    try:
        base = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        time.gmtime(base)
    except (OverflowError, ValueError):
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None
    offset = (int(m.group(8)) * 60 + int(m.group(9))) * 60
    return base - offset if m.group(7) == "+" else base + offset


_BST_CACHE: dict[int, tuple[int, int]] = {}


def _last_sunday_0100(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    weekday = calendar.weekday(year, month, last_day)  # Monday == 0
    day = last_day - (weekday + 1) % 7
    return calendar.timegm((year, month, day, 1, 0, 0, 0, 0, 0))


def _uk_offset(epoch: int) -> int:
    year = time.gmtime(epoch).tm_year
    bounds = _BST_CACHE.get(year)
    if bounds is None:
        bounds = (_last_sunday_0100(year, 3), _last_sunday_0100(year, 10))
        _BST_CACHE[year] = bounds
    return 3600 if bounds[0] <= epoch < bounds[1] else 0


def _local_parts(epoch: int, offset: int) -> tuple[str, str]:
    t = time.gmtime(epoch + offset)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def uk_date_time_zone(epoch: int) -> tuple[str, str, str]:
    """UK local date, time and zone name (``BST``/``GMT``), as authentication texts print them."""
    offset = _uk_offset(epoch)
    date, clock = _local_parts(epoch, offset)
    return date, clock, "BST" if offset else "GMT"


def uk_date_time_offset(epoch: int) -> tuple[str, str, str]:
    """UK local date, time and numeric offset (``+0100``), as ``Action Performed`` texts print them."""
    offset = _uk_offset(epoch)
    date, clock = _local_parts(epoch, offset)
    return date, clock, "+0100" if offset else "+0000"


# --- rendering --------------------------------------------------------------------------------------------


class RenderContext(Protocol):
    """What a layout needs from the tenant: people, admins and group names to talk about."""

    @property
    def event_people(self) -> Sequence[tuple[str, str]]:
        """(emailAddress, name) of ordinary mailbox users."""
        ...

    @property
    def admins(self) -> Sequence[tuple[str, str]]:
        """(emailAddress, name) of administrators."""
        ...

    @property
    def group_names(self) -> Sequence[str]:
        """Group names (``description``)."""
        ...

    @property
    def primary_domain(self) -> str:
        """The first internal domain."""
        ...


Renderer = Callable[[Rng, RenderContext, int], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Layout:
    """One audit type in one eventInfo layout.

    Attributes:
        name: stable layout name (tests and reports refer to it).
        audit_type: the record's ``auditType``.
        category: the record's ``category``.
        weight: relative frequency (slots per cycle of the tenant's layout pattern).
        render: ``(rng, tenant, epoch) -> (user, eventInfo)``.
    """

    name: str
    audit_type: str
    category: str
    weight: int
    render: Renderer


_APPS = ("Administration Console", "Mimecast Personal Portal", "Mimecast for Outlook", "Mimecast Mobile")
_METHODS = ("Cloud", "SAML", "Domain Authentication")
_TWO_FA = ("TOTP", "Mimecast Authenticator", "SMS")
_REASONS = ("Invalid credentials", "Wrong password", "Account locked", "Password expired", "IP not allowed")


def _ipv4(rng: Rng) -> str:
    # Documentation ranges only (RFC 5737).
    prefix = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{prefix}.{1 + rng.below(254)}"


def _ipv6(rng: Rng) -> str:
    return f"2001:db8:{rng.below(0xFFFF):x}::{rng.below(0xFFFF):x}:{1 + rng.below(0xFFFE):x}"


def _person(rng: Rng, ctx: RenderContext) -> tuple[str, str]:
    people = ctx.event_people
    return people[rng.below(len(people))]


def _admin(rng: Rng, ctx: RenderContext) -> tuple[str, str]:
    admins = ctx.admins
    return admins[rng.below(len(admins))]


def _auth_text(kind: str, rng: Rng, ctx: RenderContext, epoch: int, *, ipv6: bool, tail: str) -> tuple[str, str]:
    email, name = _person(rng, ctx)
    date, clock, zone = uk_date_time_zone(epoch)
    ip = _ipv6(rng) if ipv6 else _ipv4(rng)
    text = (
        f"{kind} authentication for {email} <{name}>, Date: {date}, Time: {clock} {zone}, IP: {ip}, "
        f"Application: {rng.choice(_APPS)}, Method: {rng.choice(_METHODS)}{tail}"
    )
    return email, text


def _login_ok(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    return _auth_text("Successful", rng, ctx, epoch, ipv6=False, tail="")


def _login_ok_2fa(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    return _auth_text("Successful", rng, ctx, epoch, ipv6=False, tail=f", 2FA: {rng.choice(_TWO_FA)}")


def _login_ok_ipv6(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    tail = f", 2FA: {rng.choice(_TWO_FA)}" if rng.below(2) else ""
    return _auth_text("Successful", rng, ctx, epoch, ipv6=True, tail=tail)


def _login_failed(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    return _auth_text("Failed", rng, ctx, epoch, ipv6=rng.below(5) == 0, tail=f", Reason: {rng.choice(_REASONS)}")


def _login_challenge(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    return _auth_text("Intermediate", rng, ctx, epoch, ipv6=rng.below(3) == 0, tail=f", 2FA: {rng.choice(_TWO_FA)}")


def _action(what: str, actor: tuple[str, str], rng: Rng, epoch: int, app: str = "Administration Console") -> str:
    date, clock, offset = uk_date_time_offset(epoch)
    return (
        f"Action Performed - {what} by {actor[0]}<{actor[1]}> Date: {date} Time: {clock} {offset} "
        f"IP: {_ipv4(rng)} Application: {app}"
    )


_SUPPORT = ("support.agent@mimecast.example.net", "tier2.support@mimecast.example.net")


def _support_login(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    agent = rng.choice(_SUPPORT)
    return agent, _action(f"{agent} logged into this account.", (agent, agent), rng, epoch)


def _password_changed(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    email, _ = _person(rng, ctx)
    return email, f"Password reset for user: {email} User Password Changed, Remote IP is {_ipv4(rng)}"


def _password_changed_null(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    email, _ = _person(rng, ctx)
    return email, f"Password reset for user: {email} User Password Changed, Remote IP is null"


def _group_names(ctx: RenderContext) -> Sequence[str]:
    return ctx.group_names or ("Finance Approvers",)


def _group_action(verb: str) -> Renderer:
    def render(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
        admin = _admin(rng, ctx)
        group = rng.choice(_group_names(ctx))
        if verb == "Added":
            what = f"Added {_person(rng, ctx)[0]} to {group}"
        elif verb == "Removed":
            what = f"Removed {_person(rng, ctx)[0]} from {group}"
        else:
            what = f"{verb} {group}"
        return admin[0], _action(what, admin, rng, epoch)

    return render


def _account_action(phrase: str) -> Renderer:
    def render(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
        admin = _admin(rng, ctx)
        return admin[0], _action(phrase.format(subject=_person(rng, ctx)[0]), admin, rng, epoch)

    return render


_KEYWORDS = ("invoice", "payroll", "contract", "wire transfer", "password", "gift card")


def _search_action(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    email, _ = _person(rng, ctx)
    date, clock, _zone = uk_date_time_zone(epoch)
    keywords = rng.choice(_KEYWORDS)
    text = (
        f'Executed Search - Source: Search, Search Criteria: {{"keywords":"{keywords}","route":"ALL"}}, '
        f"Date: {date}, Time: {clock}+0000, IP: {_ipv4(rng)}, Application: mimecast-case-review"
    )
    return email, text


def _directory_sync(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    return "", "No changes found."


def _message_action(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    admin = _admin(rng, ctx)
    recipient = _person(rng, ctx)[0]
    date, clock, zone = uk_date_time_zone(epoch)
    action = rng.choice(("Released message from hold", "Rejected held message", "Retrieved message from archive"))
    text = (
        f"Message Action - {action}, Message ID: <{rng.next():x}@mail.example.com>, Sender: "
        f"billing@vendor.example.com, Recipient: {recipient}, Date: {date}, Time: {clock} {zone}, "
        f"IP: {_ipv4(rng)}, Application: Administration Console"
    )
    return admin[0], text


def _connectors_multiline(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    admin = _admin(rng, ctx)
    text = (
        f"Connector updated\nName: {rng.choice(('SIEM Export', 'Threat Intel Feed', 'Awareness Sync'))}\n"
        f"Provider: {rng.choice(('Splunk', 'Microsoft', 'CrowdStrike'))}\nChanged by: {admin[0]}\n"
        f"IP: {_ipv4(rng)}"
    )
    return admin[0], text


def _unknown_key_values(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    admin = _admin(rng, ctx)
    return admin[0], (
        f"application=SIEM Export; action=keys regenerated; by={admin[0]}; ip={_ipv4(rng)}; ref={rng.next():x}"
    )


def _unknown_no_fields(rng: Rng, ctx: RenderContext, epoch: int) -> tuple[str, str]:
    # A non-e-mail ``user``: system processes act under display names.
    return "Mimecast Reporting", f"Report delivered to {1 + rng.below(9)} recipients."


LAYOUTS: tuple[Layout, ...] = (
    Layout("login_success", "User Logged On", "authentication_logs", 300, _login_ok),
    Layout("login_success_2fa", "User Logged On", "authentication_logs", 120, _login_ok_2fa),
    Layout("login_success_ipv6", "User Logged On", "authentication_logs", 40, _login_ok_ipv6),
    Layout("login_failed", "Logon Authentication Failed", "authentication_logs", 80, _login_failed),
    Layout("login_challenge", "Logon Requires Challenge", "authentication_logs", 40, _login_challenge),
    Layout("support_login", "Mimecast Support Login", "mimecast_access_logs", 5, _support_login),
    Layout("password_changed", "User Password Changed", "user_account_and_role_logs", 25, _password_changed),
    Layout(
        "password_changed_null_ip",
        "User Password Changed",
        "user_account_and_role_logs",
        5,
        _password_changed_null,
    ),
    Layout("group_created", "Folder Log Entry", "profile_group_logs", 10, _group_action("Created")),
    Layout("group_deleted", "Folder Log Entry", "profile_group_logs", 5, _group_action("Deleted")),
    Layout("group_member_added", "Folder Log Entry", "profile_group_logs", 40, _group_action("Added")),
    Layout("group_member_removed", "Folder Log Entry", "profile_group_logs", 20, _group_action("Removed")),
    Layout(
        "account_created",
        "User Account Created",
        "user_account_and_role_logs",
        15,
        _account_action("Created user {subject}"),
    ),
    Layout(
        "account_disabled",
        "User Account Disabled",
        "user_account_and_role_logs",
        8,
        _account_action("Disabled user {subject}"),
    ),
    Layout(
        "account_locked",
        "User Account Locked",
        "user_account_and_role_logs",
        8,
        _account_action("Locked user {subject}"),
    ),
    Layout(
        "account_unlocked",
        "User Account Unlocked",
        "user_account_and_role_logs",
        6,
        _account_action("Unlocked user {subject}"),
    ),
    Layout(
        "two_factor_enabled",
        "Two Factor Authentication Enabled",
        "user_account_and_role_logs",
        6,
        _account_action("Enabled two factor authentication for {subject}"),
    ),
    Layout(
        "two_factor_disabled",
        "Two Factor Authentication Disabled",
        "user_account_and_role_logs",
        4,
        _account_action("Disabled two factor authentication for {subject}"),
    ),
    Layout("search_action", "Search Action", "case_review_logs", 30, _search_action),
    Layout("directory_sync", "Completed Directory Sync", "account_logs", 20, _directory_sync),
    Layout("message_action", "Message Action", "archive_service_logs", 40, _message_action),
    Layout("connectors_multiline", "Connectors Management", "integrations_and_apis", 6, _connectors_multiline),
    Layout("unknown_key_values", "API Application Updated", "integrations_and_apis", 6, _unknown_key_values),
    Layout("unknown_no_fields", "Scheduled Report Delivered", "reporting_logs", 6, _unknown_no_fields),
)
