"""The Mimecast API 2.0 endpoints the connector reads, as :class:`~connector.api.envelope.Listing` values.

Each function writes one endpoint's query (``data[]``) and says where its records are; :data:`ENDPOINT_EVENT_TYPES`
says which event type (and so which Mimecast product, ``manifest.json``) each endpoint serves, so that a 401/403
names what the API application lacks. Nothing here sends a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connector.api.envelope import EVENT_TYPE_PRODUCTS, Listing
from connector.errors import ConfigError
from connector.timefmt import format_mimecast_time

__all__ = [
    "AUDIT_EVENTS_PATH",
    "ENDPOINT_EVENT_TYPES",
    "FIND_GROUPS_PATH",
    "GROUP_MEMBERS_PATH",
    "INTERNAL_DOMAINS_PATH",
    "INTERNAL_USERS_PATH",
    "audit_listing",
    "domains_listing",
    "groups_listing",
    "members_listing",
    "preflight_listing",
    "users_listing",
]

AUDIT_EVENTS_PATH = "/api/audit/get-audit-events"
INTERNAL_DOMAINS_PATH = "/api/domain/get-internal-domain"
INTERNAL_USERS_PATH = "/api/user/get-internal-users"
FIND_GROUPS_PATH = "/api/directory/find-groups"
GROUP_MEMBERS_PATH = "/api/directory/get-group-members"

ENDPOINT_EVENT_TYPES: Mapping[str, str] = {
    AUDIT_EVENTS_PATH: "audit",
    INTERNAL_DOMAINS_PATH: "user_management",
    INTERNAL_USERS_PATH: "user_management",
    FIND_GROUPS_PATH: "user_management",
    GROUP_MEMBERS_PATH: "user_management",
}


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    return {"startDateTime": format_mimecast_time(start), "endDateTime": format_mimecast_time(end)}


def audit_listing(start: datetime, end: datetime, categories: Sequence[str] | None = None) -> Listing:
    """Audit events with ``start <= eventTime < end``, of ``categories`` only (all when ``None`` or empty).

    Raises:
        ValueError: A naive datetime, or ``start`` after ``end``.
    """
    if start > end:
        raise ValueError("audit window start must not be after its end")
    query = _window(start, end)
    if categories:
        query["categories"] = list(categories)
    return Listing(AUDIT_EVENTS_PATH, [query])


def domains_listing() -> Listing:
    """The tenant's internal domains (``data[]`` items with ``domain``)."""
    return Listing(INTERNAL_DOMAINS_PATH, [])


def users_listing(domain: str) -> Listing:
    """Internal users of one domain (``data[0].users[]``)."""
    return Listing(INTERNAL_USERS_PATH, [{"domain": domain}], "users")


def groups_listing(source: str = "cloud", query: str = "") -> Listing:
    """Directory groups from ``source`` ("cloud" or "ldap") matching ``query`` (``data[0].folders[]``).

    Raises:
        ConfigError: ``source`` is neither "cloud" nor "ldap".
    """
    if source not in ("cloud", "ldap"):
        raise ConfigError(f"group source must be 'cloud' or 'ldap', not {source!r}", parameter="source")
    return Listing(FIND_GROUPS_PATH, [{"query": query, "source": source}], "folders")


def members_listing(group_id: str) -> Listing:
    """Members of one group (``data[0].groupMembers[]``)."""
    return Listing(GROUP_MEMBERS_PATH, [{"id": group_id}], "groupMembers")


def preflight_listing(event_type: str, now: datetime) -> Listing:
    """What the preflight reads for ``event_type``: the last hour's audit events, or the cloud groups.

    Raises:
        ConfigError: An unknown event type (naming the known ones).
    """
    if event_type == "audit":
        return Listing(AUDIT_EVENTS_PATH, [_window(now - timedelta(hours=1), now)])
    if event_type == "user_management":
        return Listing(FIND_GROUPS_PATH, [{"query": "", "source": "cloud"}])
    known = ", ".join(sorted(EVENT_TYPE_PRODUCTS))
    raise ConfigError(f"unknown event type {event_type!r} (known: {known})", parameter="event_types")
