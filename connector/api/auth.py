"""OAuth 2.0 client-credentials authentication for Mimecast API 2.0, as an ``httpx.Auth``.

Design (why it is shaped this way):

* The token request is *yielded* from the auth flow, so it goes through the same client and transport as the
  API calls (pytest-httpx and the simulator see it) and is sent without auth, so it cannot recurse.
* The token is cached until ``skew`` seconds before ``expires_in`` runs out, measured on an injectable
  monotonic ``clock``; minting a token per call burns the per-user rate limit.
* On a 401 from an API call the flow drops the token, fetches a new one and re-sends the call **once**. If the
  re-sent call answers 401 again, the flow hands that response back to the caller instead of raising: the
  caller (``MimecastClient``) knows which endpoint and event type it was calling and turns the 401 into an
  ``AuthError`` (or a ``PermissionDeniedError`` during preflight) with an actionable message. So a 401 that
  reaches the caller has always already been through one refresh.
* A refusal by the token endpoint (400/401, a 200 without ``access_token``, a non-JSON body) raises
  ``AuthError`` here; 429/5xx from the token endpoint raise a retryable ``ApiError`` so the client's retry
  policy applies. Messages name the token URL and HTTP status only: never the secret, the token or the token
  response body (bodies can echo client data).
* ``sync_auth_flow`` takes a lock around the token check-and-fetch (released in ``finally``), so threads
  sharing one client never fetch the token twice; API calls themselves run concurrently.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Generator

import httpx
import orjson

from connector.errors import ApiError, AuthError
from connector.log import register_secret
from connector.secret import Secret

__all__ = ["MimecastAuth"]

_log = logging.getLogger("connector.api.auth")

_DEFAULT_EXPIRES_IN = 1800.0
# What a bearer token may hold to be sent in an Authorization header: visible ASCII (RFC 6750's b64token is a
# subset). A CR, LF or other control character would let the token endpoint inject headers; httpx would refuse it
# with a traceback that quotes the token.
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")


class MimecastAuth(httpx.Auth):
    """Bearer-token auth that fetches, caches and refreshes a Mimecast client-credentials token.

    Attributes:
        token_refreshes: How many tokens were fetched (including the first), for the run summary.
    """

    requires_request_body = True  # the API POST may have to be re-sent after a 401
    requires_response_body = True  # the token response must be readable

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: Secret,
        *,
        clock: Callable[[], float] = time.monotonic,
        skew: float = 60.0,
    ) -> None:
        """Create the auth; no I/O happens until the first request.

        Args:
            token_url: The OAuth token endpoint, normally ``{api_base_url}/oauth/token``.
            client_id: The API 2.0 application's Client ID (the ``client_key`` parameter).
            client_secret: The Client Secret, kept wrapped so it cannot leak into reprs or logs.
            clock: Monotonic seconds; injectable so tests can age a token without sleeping.
            skew: Refresh this many seconds before the token expires, so a request never carries a token
                that expires in flight.
        """
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        register_secret(client_secret)  # masked in logs and error texts, whoever built this auth
        self._clock = clock
        self._skew = skew
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()
        self.token_refreshes = 0

    def __repr__(self) -> str:
        return f"MimecastAuth(token_url={self.token_url!r}, client_id={self._client_id!r})"

    # -- token cache ---------------------------------------------------------------------------------------

    def _valid_token(self, stale: str | None) -> str | None:
        """The cached token if it is neither near expiry nor the one that just got a 401."""
        token = self._token
        if token is None or token == stale or self._clock() >= self._refresh_at:
            return None
        return token

    def _token_request(self) -> httpx.Request:
        # data= lets httpx form-encode the fields, so '+', '&', '=' and '%' in the secret survive.
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret.reveal(),
            },
            headers={"Accept": "application/json"},
        )

    def _store(self, response: httpx.Response) -> str:
        """Read the token response, cache the token and return it.

        Raises:
            AuthError: The token endpoint refused the credentials or answered without a usable token.
            ApiError: The token endpoint was rate limited or failed (retryable; the client retries).
        """
        status = response.status_code
        if status == 429 or status >= 500:
            raise ApiError(
                f"The Mimecast token URL {self.token_url} answered HTTP {status}; the request will be retried.",
                endpoint=self.token_url,
                status_code=status,
                retryable=True,
            )
        if status in (400, 401, 403):
            raise AuthError(
                f"Mimecast rejected the client key or secret "
                f"(token URL {self.token_url} answered HTTP {status}). "
                f"Check the client_key and client_secret parameters (the Client ID and Client Secret of an API 2.0 "
                f"application in Administration Console → Services → API and Platform Integrations); the "
                f"secret is shown only once when the keys are generated."
            )
        if status != 200:
            raise AuthError(
                f"The Mimecast token URL {self.token_url} answered HTTP {status} instead of a token. "
                f"Check token_url and api_base_url."
            )
        try:
            # orjson refuses nesting deeper than 1024 with a JSONDecodeError; json.loads would hit RecursionError.
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"The Mimecast token URL {self.token_url} answered HTTP 200 without an access token. "
                f"Check token_url: it should be {{api_base_url}}/oauth/token."
            )
        # Registered before anything can go wrong with it: from now on it is masked in logs and printed lines.
        register_secret(token, transient=True)
        if _HEADER_SAFE_TOKEN.fullmatch(token) is None:
            raise AuthError(
                f"The Mimecast token URL {self.token_url} answered HTTP 200 with an access token that holds "
                f"characters not allowed in an HTTP header (control characters, spaces or non-ASCII); it was not "
                f"used. Check token_url: it should be {{api_base_url}}/oauth/token."
            )
        expires_in = _DEFAULT_EXPIRES_IN
        raw = payload.get("expires_in") if isinstance(payload, dict) else None
        if isinstance(raw, int | float | str):
            try:
                expires_in = float(raw)
            except ValueError:
                expires_in = _DEFAULT_EXPIRES_IN
            if not math.isfinite(expires_in) or expires_in <= 0:
                expires_in = _DEFAULT_EXPIRES_IN
        # A lifetime shorter than the skew would otherwise mean a new token for every request.
        lifetime = max(expires_in - self._skew, expires_in / 2)
        self._token = token
        self._refresh_at = self._clock() + lifetime
        self.token_refreshes += 1
        _log.debug(
            "access token obtained",
            extra={
                "token_url": self.token_url,
                "expires_in": expires_in,
                "token_refreshes": self.token_refreshes,
            },
        )
        return token

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one."""
        self._token = None

    # -- flows ---------------------------------------------------------------------------------------------

    def _locked_token(self, stale: str | None) -> Generator[httpx.Request, httpx.Response, str]:
        """Return a usable token, fetching one under the lock if needed (one fetch for racing threads)."""
        self._lock.acquire()
        try:
            token = self._valid_token(stale)
            if token is None:
                self._token = None
                response = yield self._token_request()
                response.read()
                token = self._store(response)
            return token
        finally:
            self._lock.release()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Authenticate ``request`` for a (possibly shared) sync client; see the module docstring."""
        request.read()
        token = yield from self._locked_token(stale=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            response.read()
            _log.info("token refused by API, refreshing once", extra={"url": str(request.url.copy_with(query=None))})
            token = yield from self._locked_token(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Lock-free flow used by ``httpx.AsyncClient`` (a thread lock must not be held across awaits)."""
        token = self._valid_token(stale=None)
        if token is None:
            token = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self._token = None
            token = self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
