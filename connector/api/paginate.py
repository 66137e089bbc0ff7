"""The page-token walk: listing after listing, page by page, with the guard against a server that loops.

Generic over what a listing is: :func:`walk` is given the listings (anything with a ``name``) and a ``fetch``
that returns the :class:`Page` a page token points to (the first page for ``None``); an envelope turns an answer
into that page, a retry loop sends it. The walk stops a listing at its last page and refuses to go on where the
server does not advance:

* a next token this listing was already given (A, B, A...) is a ``PaginationError`` (not only the last one);
* more than ``max_pages`` pages in one listing is a ``PaginationError`` (a runaway guard);
* a page of more than ``PAGE_RECORDS_FACTOR * pageSize + PAGE_RECORDS_SLACK`` records is an ``ApiError``;
* a next token that is neither text nor an integer is an ``ApiError`` (:func:`next_token`).

A page is handed out before the error its token causes, so the caller keeps what did arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from connector.errors import ApiError, PaginationError

__all__ = ["PAGE_RECORDS_FACTOR", "PAGE_RECORDS_SLACK", "Named", "Page", "WindowPage", "next_token", "walk"]

_log = logging.getLogger("connector.api.paginate")

PAGE_RECORDS_FACTOR = 2
PAGE_RECORDS_SLACK = 100
"""A page may hold at most ``PAGE_RECORDS_FACTOR * pageSize + PAGE_RECORDS_SLACK`` records; a server that ignores
``pageSize`` (a million small records fit under the body cap) is refused instead of filling memory and a batch."""


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a listing, as an envelope reads it.

    Attributes:
        records: The page's records, as the server sent them (a malformed entry is passed on, not dropped).
        next_token: The token of the next page; ``None`` when this is the last one.
    """

    records: list[Any]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class WindowPage:
    """One page of a walk over several listings (windows).

    Attributes:
        window: Index of the listing the page belongs to.
        records: The page's records (empty for a listing without any).
        last: Whether it is the listing's last page: the listing has then been read completely.
    """

    window: int
    records: list[Any]
    last: bool


class Named(Protocol):
    """A listing as the walk sees it: a name for messages and logs (an endpoint path)."""

    @property
    def name(self) -> str: ...


L = TypeVar("L", bound=Named)


def next_token(name: str, value: object) -> str | None:
    """A next page token as the server wrote it: a non-blank string (or an integer) goes on; ``None`` or blank ends.

    Anything else (``false``, ``0.5``, an object) is a server fault, refused rather than sent back as the
    text ``'False'`` or read as the end of the listing (which would lose the rest in silence).

    Raises:
        ApiError: naming ``name``, for a token that is neither text nor a number.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ApiError(
        f"{name} answered with a next page token that is neither text nor a number "
        f"(a JSON {type(value).__name__}); the listing cannot go on.",
        endpoint=name,
    )


def _check_page_records(name: str, count: int, size: int) -> None:
    """Refuse a page far larger than the ``pageSize`` asked for (see ``PAGE_RECORDS_FACTOR``)."""
    most = PAGE_RECORDS_FACTOR * size + PAGE_RECORDS_SLACK
    if count > most:
        raise ApiError(
            f"{name} answered a page of {count} records to a request for {size}; pages of more than {most} "
            f"records ({PAGE_RECORDS_FACTOR} x pageSize + {PAGE_RECORDS_SLACK}) are refused, so the server's "
            f"ignoring pageSize cannot fill memory or one batch.",
            endpoint=name,
        )


def _stop_error(name: str, number: int, page: Page, seen: set[str], max_pages: int) -> PaginationError | None:
    """The error to raise once page ``number``'s records are handed out, if the listing cannot go on.

    ``seen`` holds every token this listing was given so far: a token given twice would loop, so the listing
    stops there, not at ``max_pages``. An empty page ends the listing even with a next token (servers send one
    alongside an empty last page: docs/mimecast-api.md).
    """
    token = page.next_token
    if not page.records or token is None:
        return None
    if token in seen:
        return PaginationError(
            f"{name} answered with a page token that it had already given in this listing (page {number}); "
            f"the server is not advancing, so the pull stops here instead of looping.",
            endpoint=name,
        )
    if number >= max_pages:
        return PaginationError(
            f"{name} still had more pages after the cap of {max_pages} pages per call; "
            f"the pull stops here. Narrow the window or raise max_pages.",
            endpoint=name,
        )
    seen.add(token)  # at most max_pages tokens
    return None


def walk(
    listings: Sequence[L], fetch: Callable[[L, str | None], Page], *, page_size: int, max_pages: int
) -> Generator[WindowPage, None, None]:
    """Each listing in turn, page by page; a page is fetched only when the caller asks for it.

    Every listing ends with a page marked ``last`` (an empty one for a listing without records), unless an
    error ends the walk first (then the listing it happened in is never marked read).

    Args:
        listings: The listings, in order.
        fetch: ``fetch(listing, token)``: the page ``token`` points to (the first page for ``None``).
        page_size: The ``pageSize`` each request asks for (for the page-record cap).
        max_pages: Most pages one listing may have.

    Raises:
        PaginationError: A repeated token or more than ``max_pages`` pages, after the page that caused it.
        ApiError: A page far larger than ``page_size``, and whatever ``fetch`` raises.
    """
    for index, listing in enumerate(listings):
        name = listing.name
        token: str | None = None
        seen: set[str] = set()  # every token this listing was given
        number = 0
        while True:
            page = fetch(listing, token)
            _check_page_records(name, len(page.records), page_size)
            number += 1
            _log.debug(
                "page fetched",
                extra={
                    "endpoint": name,
                    "page": number,
                    "records": len(page.records),
                    "has_next": page.next_token is not None,
                },
            )
            error = _stop_error(name, number, page, seen, max_pages)
            last = (not page.records or page.next_token is None) and error is None
            yield WindowPage(index, page.records, last)
            if error is not None:
                raise error
            if last:
                break
            token = page.next_token
