"""The one ``httpx.Client`` a Mimecast client sends on, and how a :class:`~connector.api.envelope.Call` is sent.

Every request goes through a ``BoundedTransport`` (size caps, overall deadline: ``connector.api.transport``),
whatever host it goes to: the API, the auth's token endpoint, or a pre-signed download elsewhere. Redirects are
never followed. Passing a transport makes httpx ignore ``HTTPS_PROXY``/``NO_PROXY``, so the proxies are mounted
here: an explicit ``proxy_url`` for every host; otherwise the environment's, per host the client knows of (the
API, and the token endpoint when the auth names one in ``token_url``).
"""

from __future__ import annotations

import logging

import httpx

from connector.api.envelope import Call
from connector.api.transport import BoundedTransport, Limits, environment_proxy, host_pattern, redact_url
from connector.errors import ApiError

__all__ = ["open_channel", "send", "token_urls"]

_log = logging.getLogger("connector.api.channel")

_USER_AGENT = "mimecast-ocsf-connector/0.1.0"


def token_urls(auth: object) -> list[str]:
    """The auth's token endpoint (``auth.token_url``), if it has one: its answers get the small token cap."""
    url = getattr(auth, "token_url", None)
    return [url] if isinstance(url, str) and url else []


def _real_transport(proxy: str | None) -> httpx.BaseTransport:
    """HTTPS through ``proxy`` (or direct); connection setup is retried twice."""
    return httpx.HTTPTransport(retries=2, proxy=proxy)


def open_channel(
    base_url: str,
    auth: httpx.Auth,
    *,
    timeout: httpx.Timeout,
    limits: Limits,
    transport: httpx.BaseTransport | None,
    proxy_url: str,
) -> httpx.Client:
    """The client every request of one Mimecast client goes through.

    Args:
        base_url: The validated API base URL.
        auth: Applied to every request whose ``Call`` is ``authenticated``.
        timeout: httpx's per-operation timeouts.
        limits: Size caps and the overall deadline of one request.
        transport: A custom transport (tests, the embedded simulator), bounded too; then no proxy is mounted.
        proxy_url: A validated proxy URL for every host, or empty for the environment's.
    """
    tokens = token_urls(auth)

    def bounded(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        return BoundedTransport(inner, limits, token_urls=tokens)

    mounts: dict[str, httpx.BaseTransport | None] = {}
    if transport is None and proxy_url:
        mounts["all://"] = bounded(_real_transport(proxy_url))
        _log.debug("using a proxy", extra={"host": "*", "proxy": redact_url(proxy_url)})
    elif transport is None:
        for url in (base_url, *tokens):
            proxy = environment_proxy(url)
            if proxy:
                mounts[host_pattern(url)] = bounded(_real_transport(proxy))
                _log.debug("using a proxy", extra={"host": httpx.URL(url).host, "proxy": redact_url(proxy)})
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=timeout,
        follow_redirects=False,
        transport=bounded(transport if transport is not None else _real_transport(None)),
        mounts=mounts or None,
        headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
    )


def send(http: httpx.Client, call: Call) -> httpx.Response:
    """Send ``call`` once on ``http`` (without its auth unless ``call.authenticated``) and read the answer.

    Raises:
        ApiError: ``http`` has been closed (a host closed the connector while a pull was still running).
        httpx.HTTPError: as httpx raises it (the retry loop decides what to retry).
    """
    try:
        return http.request(
            call.method,
            call.url,
            params=call.params,
            content=call.content,
            headers=call.headers,
            auth=httpx.USE_CLIENT_DEFAULT if call.authenticated else None,
        )
    except RuntimeError:  # httpx: "Cannot send a request, as the client has been closed."
        if not http.is_closed:
            raise
        raise ApiError(
            f"{call.name} was not requested: the connector was closed (close()) while a pull was still running; "
            f"nothing more is sent and the last committed checkpoint stays valid.",
            endpoint=call.name,
        ) from None
