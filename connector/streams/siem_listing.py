"""The two SIEM API requests: the batch listing and the stream page, as GET envelopes of the client.

Both are ``GET`` with query parameters and answer ``{"value": [...], "@nextPage": "...", "isCaughtUp": bool}``
(docs/siem.md): the batch listing's ``value`` holds file links (``url``, ``size``, ``expiry``), the stream's the
records themselves. The answer is read here and nowhere else:

* 401/403: ``PermissionDeniedError`` naming the ``siem`` event type and the product it needs (``manifest.json``),
  through the same ``access_error`` as every other endpoint (a 401 only during the preflight probe);
* 5xx and a ``fail[]`` entry marked retryable: a retryable ``ApiError`` (the client's retry loop sends it again);
  429 is the retry loop's own (the app-wide ``RateGate``);
* any other 4xx, a redirect, a body without a ``value`` list, a ``value`` entry of the batch listing without a
  ``url``: ``ApiError`` with the server's code (``err_validation_date_range`` for a stream window the API no longer
  serves, which the stream mode turns into a reported gap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from connector.api.download import link_name
from connector.api.envelope import Call, access_error, decode_json, http_error, server_text
from connector.api.paginate import Page, next_token
from connector.errors import ApiError

__all__ = ["BATCH_PATH", "STREAM_PATH", "BatchFile", "Listed", "SiemListing", "batch_files"]

BATCH_PATH: Final = "/siem/v1/batch/events/cg"
STREAM_PATH: Final = "/siem/v1/events/cg"
EVENT_TYPE: Final = "siem"


@dataclass(frozen=True, slots=True)
class Listed:
    """One answer: its entries, the next page token (``None`` when the server gave none) and ``isCaughtUp``."""

    value: list[Any]
    next_page: str | None
    caught_up: bool


@dataclass(frozen=True, slots=True)
class BatchFile:
    """One file of a batch listing. ``url`` is a credential (its signed query): never logged, never in a repr."""

    url: str
    size: int | None
    name: str

    def __repr__(self) -> str:
        return f"BatchFile({self.name!r}, size={self.size})"


def _fail(payload: object) -> tuple[str | None, str | None, bool]:
    """(code, message, retryable) of the first ``fail[]`` entry, in either of Mimecast's shapes."""
    fail = payload.get("fail") if isinstance(payload, dict) else None
    if not isinstance(fail, list) or not fail or not isinstance(fail[0], dict):
        return None, None, False
    errors = fail[0].get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else fail[0]
    code, message = error.get("code"), error.get("message")
    return (
        server_text(code) if code is not None else None,
        server_text(message) if message is not None else None,
        error.get("retryable") is True,
    )


class SiemListing:
    """One SIEM listing (the batch listing of one type, or the stream page of a set of types).

    Args:
        path: ``BATCH_PATH`` or ``STREAM_PATH``.
        params: The query besides ``pageSize`` and ``nextPage``.
        probe: A permission probe: a 401 is then a ``PermissionDeniedError`` too.
    """

    def __init__(self, path: str, params: Mapping[str, str], *, probe: bool = False) -> None:
        self.path = path
        self.params = dict(params)
        self.probe = probe

    @property
    def name(self) -> str:
        """The endpoint path (what messages and logs call it)."""
        return self.path

    def __repr__(self) -> str:
        return f"SiemListing({self.path!r}, {self.params!r})"

    def call(self, page_size: int, token: str | None) -> Call:
        """The GET of the page ``token`` points to (the first page for ``None``)."""
        params = {**self.params, "pageSize": str(page_size)}
        if token is not None:
            params["nextPage"] = token
        return Call("GET", self.path, self.path, params=params)

    def interpret(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's payload, or the matching exception (see the module docstring)."""
        name, status = self.path, response.status_code
        payload = decode_json(response.content)
        code, message, retryable = _fail(payload)
        denied = access_error(name, status, code, EVENT_TYPE, probe=self.probe)
        if denied is not None:
            raise denied
        error = http_error(name, response, code, message)
        if error is not None:
            error.retryable = error.retryable or retryable
            raise error
        if not isinstance(payload, dict) or not isinstance(payload.get("value", None), list):
            raise ApiError(f"{name} answered HTTP {status} without a 'value' list", endpoint=name, status_code=status)
        if code is not None or message is not None:
            raise ApiError(
                f"Mimecast reported an error for {name}: {': '.join(p for p in (code, message) if p)}",
                endpoint=name,
                status_code=status,
                code=code,
                retryable=retryable,
            )
        return payload

    def page(self, payload: dict[str, Any]) -> Page:
        """The ``Envelope`` protocol's view: the entries and the next token (``None`` once caught up)."""
        listed = self.listed(payload)
        return Page(listed.value, None if listed.caught_up else listed.next_page)

    def listed(self, payload: dict[str, Any]) -> Listed:
        """The entries, ``@nextPage`` and ``isCaughtUp`` of an answer ``interpret`` accepted."""
        caught_up = payload.get("isCaughtUp")
        if caught_up is not None and not isinstance(caught_up, bool):
            raise ApiError(f"{self.path} answered an isCaughtUp that is not a boolean", endpoint=self.path)
        return Listed(payload["value"], next_token(self.path, payload.get("@nextPage")), caught_up is True)


def batch_files(listed: Listed, path: str = BATCH_PATH) -> list[BatchFile]:
    """The files of a batch listing.

    Raises:
        ApiError: an entry without a text ``url`` (the listing cannot be read: nothing is skipped in silence).
    """
    files = []
    for index, entry in enumerate(listed.value):
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url:
            raise ApiError(f"{path} listed an entry without a url (value[{index}])", endpoint=path)
        size = entry.get("size")
        size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        files.append(BatchFile(url, size, link_name(url)))
    return files
