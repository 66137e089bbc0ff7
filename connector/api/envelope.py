"""How a Mimecast request is written and its answer read: the ``/api`` POST envelope and its error rules.

An envelope is the part of a listing that knows the wire format; the retry loop (``connector.api.retry``) and the
page walk (``connector.api.paginate``) know none of it. It has three jobs (the :class:`Envelope` protocol):

* ``call(page_size, token)``: the :class:`Call` to send for one page (method, URL, query parameters, body,
  headers, and whether it carries the client's auth);
* ``interpret(response)``: the answer's payload, or the matching exception; an ``ApiError(retryable=True)``
  makes the retry loop send the request again, so each envelope decides what is worth retrying;
* ``page(payload)``: the payload's records and next page token (a :class:`~connector.api.paginate.Page`).

:class:`PostEnvelope` is the API 2.0 ``/api`` envelope: ``{"meta": {"pagination": {"pageSize", "pageToken"}},
"data": [...]}`` in, ``{"meta": {"status", "pagination": {"next"}}, "data": [...], "fail": [...]}`` out:

* HTTP 5xx, a ``fail[]`` entry marked ``retryable``, ``meta.status`` 429 or 5xx: retryable ``ApiError``;
* any other 4xx, a non-retryable ``fail[]``, another ``meta.status``, a body that is not a JSON object, a redirect
  (never followed, so credentials never go to another host): ``ApiError``;
* HTTP 401 (the auth has already refreshed the token and re-sent once): ``AuthError``, or
  ``PermissionDeniedError`` for a probe; HTTP 403: ``PermissionDeniedError`` naming the event type and the
  Mimecast product (``manifest.json``) the API application lacks.

Another envelope is another class with the same three methods: a GET with query parameters and another JSON
answer (the SIEM batch listing), or a download from a pre-signed URL on another host (``Call(authenticated=False)``
sends it without the bearer token, through the same bounded transport). ``tests/test_envelope_seams.py`` shows both.
Text the server sent goes into messages only through :func:`server_text` (shortened, registered secrets masked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from connector.api.paginate import Page, next_token
from connector.errors import ApiError, AuthError, PermissionDeniedError
from connector.log import redact_text
from connector.registry import registry

__all__ = [
    "API_KEYS_V1_CREDENTIALS",
    "EVENT_TYPE_PRODUCTS",
    "OAUTH2_CREDENTIALS",
    "Call",
    "Credentials",
    "Envelope",
    "Listing",
    "PostEnvelope",
    "access_error",
    "decode_json",
    "http_error",
    "server_text",
]

EVENT_TYPE_PRODUCTS: Mapping[str, str] = {value: spec.product for value, spec in registry().event_types.items()}
"""The Mimecast API 2.0 product an application needs for each of our event types (from ``manifest.json``)."""

Record = dict[str, Any]

_MAX_SERVER_TEXT = 300
_JSON_BODY = {"Content-Type": "application/json"}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as an envelope writes it; the client sends it (``MimecastClient.request``).

    Attributes:
        method: ``"POST"``, ``"GET"``...
        url: A path on the API host, or an absolute URL (a pre-signed download on another host).
        name: What messages and logs call it: an endpoint path, never a URL whose query holds a signature.
        params: Query parameters.
        content: The request body.
        headers: Headers on top of the client's.
        authenticated: Whether the client's auth applies; ``False`` sends no ``Authorization`` header (a
            pre-signed URL carries its own credential, and the bearer token must not leave the API host).
    """

    method: str
    url: str = field(repr=False)  # a pre-signed URL's query is a credential: never in a repr
    name: str
    params: Mapping[str, str] | None = field(default=None, repr=False)
    content: bytes | None = field(default=None, repr=False)
    headers: Mapping[str, str] | None = field(default=None, repr=False)
    authenticated: bool = True


class Envelope(Protocol):
    """How the requests of one listing are written and their answers read (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def call(self, page_size: int, token: str | None) -> Call: ...

    def interpret(self, response: httpx.Response) -> Any: ...

    def page(self, payload: Any) -> Page: ...


@dataclass(frozen=True, slots=True)
class Listing:
    """One paginated request of the ``/api`` POST envelope, as a stream declares it.

    Attributes:
        endpoint: The path, e.g. ``/api/audit/get-audit-events``.
        data: The request's ``data`` array (the query).
        records_at: Where the records are: ``data[].<records_at>[]``; ``None`` for the ``data[]`` items themselves.
    """

    endpoint: str
    data: list[Record]
    records_at: str | None = None


def server_text(value: object) -> str:
    """Text the server sent, for an error message: shortened, and with every registered secret masked (a server
    that echoes the request would otherwise put the access token or the client secret into ``str(error)``)."""
    text = redact_text(str(value)) if value is not None else ""  # before cutting: no secret is left half-shown
    return text if len(text) <= _MAX_SERVER_TEXT else text[:_MAX_SERVER_TEXT] + "…"


def decode_json(content: bytes) -> Any:
    """The JSON value of a response body, or None when it is not JSON.

    orjson first (about twice as fast as ``json`` on a 500-record page). It refuses a string holding a lone
    surrogate escape such as ``"\\ud83d"`` (a cut emoji in a tenant's text), which would refuse the whole page on
    every run; ``json`` reads it, and each lone surrogate becomes U+FFFD, so the page's records are mapped and the
    events stay valid UTF-8. The walk is iterative: nesting depth cannot overflow the stack.
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or nested absurdly
        return None
    if isinstance(payload, str):
        return _LONE_SURROGATE.sub("\ufffd", payload)
    stack: list[Any] = [payload] if isinstance(payload, dict | list) else []
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str):
                if _LONE_SURROGATE.search(value):
                    node[key] = _LONE_SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
        if isinstance(node, dict) and any(isinstance(k, str) and _LONE_SURROGATE.search(k) for k in node):
            for old in [k for k in node if _LONE_SURROGATE.search(k)]:
                node[_LONE_SURROGATE.sub("\ufffd", old)] = node.pop(old)
    return payload


def _first_fail(payload: Any) -> tuple[str | None, str | None, bool]:
    """(code, message, retryable) of the first error in a ``fail[]`` array, in either of Mimecast's shapes."""
    fail = payload.get("fail") if isinstance(payload, dict) else None
    if not isinstance(fail, list) or not fail:
        return None, None, False
    first = fail[0] if isinstance(fail[0], dict) else {}
    errors = first.get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else first
    code = error.get("code")
    message = error.get("message")
    return (
        server_text(code) if code is not None else None,
        server_text(message) if message is not None else None,
        error.get("retryable") is True,
    )


def _describe(code: str | None, message: str | None) -> str:
    parts = [part for part in (code, message) if part]
    return ": ".join(parts) if parts else "no error details"


def http_error(
    name: str, response: httpx.Response, code: str | None = None, message: str | None = None
) -> ApiError | None:
    """The error for an HTTP status Mimecast answers with (other than 401, 403 and 429), or None for a 2xx.

    A redirect is refused (never followed: credentials never leave the configured host); 5xx is retryable; any
    other status outside 2xx is not. ``code`` and ``message`` are the answer's error details, if any.
    """
    status = response.status_code
    if 300 <= status < 400:
        host = urlsplit(response.headers.get("location", "")).hostname or "an unknown location"
        return ApiError(
            f"{name} answered HTTP {status}, a redirect to {host}. Redirects are not followed "
            f"so that credentials never leave the configured host; check api_base_url.",
            endpoint=name,
            status_code=status,
        )
    if 200 <= status < 300:
        return None
    return ApiError(
        f"Mimecast answered HTTP {status} to {name} ({_describe(code, message)})",
        endpoint=name,
        status_code=status,
        code=code,
        retryable=status >= 500,
    )


@dataclass(frozen=True)
class Credentials:
    """What the credentials are, for the messages of a refused request.

    Attributes:
        application: Where a missing product is added.
        rejected: What to check after a final 401 (``{product}`` is filled in).
    """

    application: str
    rejected: str


OAUTH2_CREDENTIALS: Final = Credentials(
    application="on the API 2.0 application whose Client ID is the configured client_key",
    rejected="even with a freshly issued access token. Check that the API 2.0 application is enabled and has the "
    "'{product}' product",
)
API_KEYS_V1_CREDENTIALS: Final = Credentials(
    application="on the API 1.0 application of app_id, for the role of the user whose access_key signs the requests",
    rejected="to a request signed with the API 1.0 keys. Check app_id, app_key, access_key and secret_key (a wrong "
    "app_id answers err_developer_key, a wrong key err_xdk_invalid_signature), and that the user's role allows "
    "the '{product}' product",
)


def _denied(
    event_type: str, name: str, status: int, code: str | None, credentials: Credentials
) -> PermissionDeniedError:
    product = EVENT_TYPE_PRODUCTS.get(event_type, "the needed")  # a stream outside the manifest (a test's)
    detail = f" ({code})" if code else ""
    return PermissionDeniedError(
        f"Mimecast refused the {event_type} event type: {name} answered HTTP {status}{detail}. "
        f"The API application lacks the '{product}' product (or a role that allows it). Add it in "
        f"Administration Console → Services → API and Platform Integrations, {credentials.application}.",
        event_type=event_type,
        product=product,
    )


def access_error(
    name: str,
    status: int,
    code: str | None,
    event_type: str | None,
    *,
    probe: bool = False,
    credentials: Credentials = OAUTH2_CREDENTIALS,
) -> AuthError | None:
    """The error for a 401, 403 or 418 from an API endpoint, or None for any other status.

    A 401 reaches here only after the auth did what it can (a new OAuth 2.0 token and one re-send; nothing for
    API 1.0 keys): ``AuthError``, or during a probe ``PermissionDeniedError`` for ``event_type``. A 403 is
    ``PermissionDeniedError`` naming ``event_type`` (``audit`` when unknown) and the product it needs. A 418 is
    Mimecast's answer once an API 1.0 binding (the access and secret key pair) has expired.
    """
    if status == 401:
        if probe and event_type is not None:
            return _denied(event_type, name, status, code, credentials)
        product = EVENT_TYPE_PRODUCTS.get(event_type or "", "the needed")
        detail = f" ({code})" if code else ""
        return AuthError(
            f"Mimecast answered HTTP 401{detail} to {name} {credentials.rejected.format(product=product)}, "
            f"or run the connector's check to test each event type."
        )
    if status == 403:
        return _denied(event_type or "audit", name, status, code, credentials)
    if status == 418 and credentials is API_KEYS_V1_CREDENTIALS:
        return AuthError(
            f"Mimecast answered HTTP 418{f' ({code})' if code else ''} to {name}: the API 1.0 binding (access_key "
            f"and secret_key) has expired. Create new keys for the user, and set that user's Authentication Cache "
            f"TTL to Never Expire so that they do not expire again."
        )
    return None


class PostEnvelope:
    """The ``/api`` POST envelope of one :class:`Listing`.

    Args:
        listing: Endpoint, query and where the records are.
        event_type: The event type the endpoint serves, named by a 401/403 (with the product it needs).
        probe: A permission probe: a 401 is then a ``PermissionDeniedError`` too, not an ``AuthError``.
        credentials: What the credentials are, for the messages of a refused request.
    """

    def __init__(
        self,
        listing: Listing,
        event_type: str | None = None,
        *,
        probe: bool = False,
        credentials: Credentials = OAUTH2_CREDENTIALS,
    ) -> None:
        self.listing = listing
        self.event_type = event_type
        self.probe = probe
        self.credentials = credentials

    @property
    def name(self) -> str:
        """The endpoint path."""
        return self.listing.endpoint

    def __repr__(self) -> str:
        return f"PostEnvelope({self.listing.endpoint!r}, event_type={self.event_type!r})"

    def call(self, page_size: int, token: str | None) -> Call:
        """The POST for the page ``token`` points to (the first page for ``None``)."""
        pagination: Record = {"pageSize": page_size}
        if token is not None:
            pagination["pageToken"] = token
        body = {"meta": {"pagination": pagination}, "data": self.listing.data}
        # orjson: the envelope is small, but the page that comes back is not (parsed in interpret).
        return Call("POST", self.name, self.name, content=orjson.dumps(body), headers=_JSON_BODY)

    def interpret(self, response: httpx.Response) -> Record:
        """Turn one non-429 answer into its payload or the matching exception (see the module docstring)."""
        name = self.name
        status = response.status_code
        payload = decode_json(response.content)
        code, message, fail_retryable = _first_fail(payload)
        error = access_error(
            name, status, code, self.event_type, probe=self.probe, credentials=self.credentials
        ) or http_error(name, response, code, message)
        if error is not None:
            raise error
        if not isinstance(payload, dict):
            raise ApiError(
                f"{name} answered HTTP {status} with a body that is not a JSON object",
                endpoint=name,
                status_code=status,
            )
        if code is not None or message is not None or payload.get("fail"):
            raise ApiError(
                f"Mimecast reported an error for {name}: {_describe(code, message)}",
                endpoint=name,
                status_code=status,
                code=code,
                retryable=fail_retryable,
            )
        meta = payload.get("meta")
        meta_status = meta.get("status") if isinstance(meta, dict) else None
        if meta_status is not None and meta_status != 200:
            retryable = isinstance(meta_status, int) and (meta_status == 429 or meta_status >= 500)
            raise ApiError(
                f"{name} answered with meta.status {server_text(meta_status)} instead of 200",
                endpoint=name,
                status_code=meta_status if isinstance(meta_status, int) else status,
                code=f"meta_status_{server_text(meta_status)}",
                retryable=retryable,
            )
        return payload

    def page(self, payload: Record) -> Page:
        """The records (``data[]``, or ``data[].<records_at>[]``) and ``meta.pagination.next``."""
        records = self._records(payload)
        meta = payload.get("meta")
        pagination = meta.get("pagination") if isinstance(meta, dict) else None
        return Page(records, next_token(self.name, pagination.get("next") if isinstance(pagination, dict) else None))

    def _records(self, payload: Record) -> list[Any]:
        name, nested = self.name, self.listing.records_at
        data = payload.get("data", [])
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ApiError(f"{name} answered with a 'data' that is not a list", endpoint=name)
        if nested is None:
            # A malformed entry (not an object) is passed on, not raised: the mapper reports it with its position
            # and the rest of the page is still delivered. Raising here would fail the same window on every run.
            return data
        items: list[Any] = []
        for entry in data:
            inner = entry.get(nested, []) if isinstance(entry, dict) else None
            if inner is None:
                inner = []
            if not isinstance(inner, list):
                raise ApiError(f"{name} answered with a '{nested}' that is not a list", endpoint=name)
            items.extend(inner)
        return items
