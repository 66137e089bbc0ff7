"""The reads the old endpoint-per-method client offered, written with the generic ``MimecastClient.pages`` and the
streams' endpoint declarations: what the client tests (and a few others) call.

The connector itself reads through its stream descriptors (connector/streams); these keep the client tests about
the client (envelope, pagination, retries, read-ahead) rather than about one stream's queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from connector.api.client import MimecastClient, WindowPage
from connector.streams.audit import AUDIT, AUDIT_EVENTS, audit_query
from connector.streams.directory import DIRECTORY, FIND_GROUPS, GROUP_MEMBERS, INTERNAL_DOMAINS, INTERNAL_USERS
from connector.timefmt import ms_to_datetime

Record = dict[str, Any]


def _records(client: MimecastClient, pages: Iterator[WindowPage]) -> Iterator[list[Record]]:
    try:
        for page in pages:
            if page.records:
                yield page.records
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def audit_event_windows(
    client: MimecastClient,
    windows: Sequence[tuple[datetime, datetime]],
    categories: Sequence[str] | None = None,
    page_size: int | None = None,
) -> Iterator[WindowPage]:
    """Audit events of several windows in a row, every window ending with a page marked ``last``."""
    listings = [AUDIT_EVENTS.listing([audit_query(start, end, categories)]) for start, end in windows]
    return client.pages(listings, page_size=page_size, event_type="audit")


def audit_event_pages(
    client: MimecastClient,
    start: datetime,
    end: datetime,
    categories: Sequence[str] | None = None,
    page_size: int | None = None,
) -> Iterator[list[Record]]:
    """The non-empty pages of one audit window."""
    return _records(client, audit_event_windows(client, [(start, end)], categories, page_size))


def audit_events(
    client: MimecastClient,
    start: datetime,
    end: datetime,
    categories: Sequence[str] | None = None,
    page_size: int | None = None,
) -> Iterator[Record]:
    """The records of one audit window, one by one."""
    for page in audit_event_pages(client, start, end, categories, page_size):
        yield from page


def _listing_records(client: MimecastClient, listing: Any, page_size: int | None) -> Iterator[Record]:
    for page in _records(client, client.pages([listing], page_size=page_size, event_type="user_management")):
        yield from page


def internal_domains(client: MimecastClient, page_size: int | None = None) -> Iterator[Record]:
    return _listing_records(client, INTERNAL_DOMAINS.listing([]), page_size)


def internal_users(client: MimecastClient, domain: str, page_size: int | None = None) -> Iterator[Record]:
    return _listing_records(client, INTERNAL_USERS.listing([{"domain": domain}]), page_size)


def groups(
    client: MimecastClient, source: str = "cloud", query: str = "", page_size: int | None = None
) -> Iterator[Record]:
    return _listing_records(client, FIND_GROUPS.listing([{"query": query, "source": source}]), page_size)


def group_members(client: MimecastClient, group_id: str, page_size: int | None = None) -> Iterator[Record]:
    return _listing_records(client, GROUP_MEMBERS.listing([{"id": group_id}]), page_size)


def preflight(client: MimecastClient, event_types: Iterable[str], now: datetime) -> None:
    """The host's check: each stream's probe at ``now``."""
    streams = {AUDIT.name: AUDIT, DIRECTORY.name: DIRECTORY}
    now_ms = int(now.timestamp() * 1000)
    for name in event_types:
        client.probe(streams[name].probe(now_ms), name)


__all__ = [
    "audit_event_pages",
    "audit_event_windows",
    "audit_events",
    "group_members",
    "groups",
    "internal_domains",
    "internal_users",
    "ms_to_datetime",
    "preflight",
]
