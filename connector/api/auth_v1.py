"""Mimecast API 1.0 key authentication (HMAC-SHA1 request signing), as an ``httpx.Auth``.

For tenants whose integration still runs on API 1.0 keys; see ``docs/mimecast-api-v1.md`` for the scheme, the
hosts and the error shapes. Every request carries::

    x-mc-date:     Tue, 24 Nov 2015 12:50:11 UTC        (now, UTC, English day and month names)
    x-mc-req-id:   a fresh UUID
    x-mc-app-id:   the Application ID
    Authorization: MC <access key>:<base64(HMAC-SHA1(base64decode(secret key), data to sign))>

where the data to sign is ``<x-mc-date>:<x-mc-req-id>:<path>:<application key>`` and ``<path>`` is the request's
path alone (``/api/audit/get-audit-events``: no scheme, host or query).

Design (why it is shaped this way):

* The flow signs and sends once. The date and the request id are taken when the flow runs, and httpx runs it for
  every send, so each retry of the client (429, 5xx, transport error) is signed anew: a re-sent request never
  repeats an id and never carries a stale date.
* There is no token, so a 401 has nothing to refresh: it is handed back to the caller as is (no re-send loop),
  which reports it as rejected keys. ``token_refreshes`` stays 0 and ``token_url`` is None, so the client's run
  summary and transport set-up can treat both auths alike.
* The keys are checked when the auth is built (``ConfigError`` naming the parameter), so a Secret Key that is not
  base64 fails at start-up, not on the first request. The two secrets stay wrapped in ``Secret`` and registered for
  redaction; the decoded key is never stored, only re-derived per request.
* No state is shared between requests, so one auth can serve many threads without a lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Generator

import httpx

from connector.errors import ConfigError
from connector.log import register_secret
from connector.secret import Secret

__all__ = ["ApiKeysV1Auth", "check_api_keys", "decode_secret_key", "format_mc_date"]

# Fixed English names: strftime's %a and %b follow the process locale, and Mimecast expects these.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# What may go into a header value: visible ASCII. A CR or LF would inject headers, and httpx would refuse anything
# else with a traceback that quotes the value.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def format_mc_date(epoch_seconds: float) -> str:
    """The ``x-mc-date`` value for an instant: ``Tue, 24 Nov 2015 12:50:11 UTC``.

    Args:
        epoch_seconds: Seconds since the epoch (``time.time()``); fractions are dropped.
    """
    t = time.gmtime(int(epoch_seconds))
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC"
    )


def decode_secret_key(secret_key: Secret) -> bytes:
    """The HMAC key: the Secret Key decoded from base64 (strictly: no spaces, line breaks or stray characters).

    Raises:
        ConfigError: naming ``secret_key``, when it is not valid base64 or decodes to nothing. The message never
            shows the value, not even its length.
    """
    try:
        key = base64.b64decode(secret_key.reveal(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ConfigError(
            "Parameter 'secret_key' is not valid base64. Mimecast shows the Secret Key of an API 1.0 binding as "
            "base64 text: copy it whole, without spaces or line breaks.",
            parameter="secret_key",
        )
    return key


def _check_header_value(value: str, parameter: str, label: str) -> None:
    if not isinstance(value, str) or _HEADER_SAFE.fullmatch(value) is None:
        raise ConfigError(
            f"Parameter '{parameter}' must be the {label} as Mimecast shows it: visible ASCII characters, no "
            f"spaces or line breaks.",
            parameter=parameter,
        )


def check_api_keys(app_id: str, access_key: str, secret_key: Secret) -> None:
    """Check what the keys must be before anything is signed: the two ids can be sent in a header, and the Secret
    Key is base64 (``Config`` calls this so a bad key fails at start-up).

    Raises:
        ConfigError: naming ``app_id``, ``access_key`` or ``secret_key``; no message shows a secret.
    """
    _check_header_value(app_id, "app_id", "Application ID")
    _check_header_value(access_key, "access_key", "Access Key")
    decode_secret_key(secret_key)


def _secret(value: Secret, parameter: str) -> Secret:
    if not isinstance(value, Secret):
        raise TypeError(f"{parameter} must be a connector.secret.Secret")
    if value.withheld:
        raise ConfigError(
            f"Parameter '{parameter}' was withheld when this configuration was pickled (secrets never are); call "
            f"config.with_secret({parameter}=...) in the process that runs the connector.",
            parameter=parameter,
        )
    if not value:
        raise ConfigError(f"Parameter '{parameter}' is required for auth_method api_keys_v1.", parameter=parameter)
    return value


class ApiKeysV1Auth(httpx.Auth):
    """Signs every request with a Mimecast API 1.0 key binding (see the module docstring).

    Attributes:
        app_id: The Application ID (sent as ``x-mc-app-id``).
        token_refreshes: Always 0: API 1.0 keys involve no token.
        token_url: Always None: there is no token endpoint.
    """

    requires_request_body = False  # the body is not signed
    requires_response_body = False
    token_url: str | None = None

    def __init__(
        self,
        app_id: str,
        app_key: Secret,
        access_key: str,
        secret_key: Secret,
        *,
        clock: Callable[[], float] = time.time,
        request_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        """Check the keys and create the auth; no I/O happens here.

        Args:
            app_id: The API 1.0 application's Application ID (``app_id``).
            app_key: Its Application Key (``app_key``), signed into every request, never sent.
            access_key: The binding's Access Key (``access_key``), sent in the Authorization header.
            secret_key: The binding's Secret Key (``secret_key``), base64; the HMAC key, never sent.
            clock: Wall-clock seconds since the epoch for ``x-mc-date``; injectable for tests.
            request_id: A fresh ``x-mc-req-id`` per call; injectable for tests.

        Raises:
            ConfigError: A key is missing, withheld, holds characters a header cannot carry, or the Secret Key is
                not base64. ``parameter`` names it; no message shows a secret.
        """
        self._app_key = _secret(app_key, "app_key")
        self._secret_key = _secret(secret_key, "secret_key")
        check_api_keys(app_id, access_key, self._secret_key)  # fail now, not on the first request
        self.app_id = app_id
        self._access_key = access_key
        # Masked in logs and printed lines from now on, whoever built this auth.
        register_secret(self._app_key)
        register_secret(self._secret_key)
        self._clock = clock
        self._request_id = request_id
        self.token_refreshes = 0

    def __repr__(self) -> str:
        return f"ApiKeysV1Auth(app_id={self.app_id!r})"

    def headers_for(self, path: str) -> dict[str, str]:
        """The four authentication headers for a request to ``path``, with a fresh date and request id.

        Args:
            path: The request path only, e.g. ``/api/audit/get-audit-events``.
        """
        date = format_mc_date(self._clock())
        request_id = self._request_id()
        data = ":".join((date, request_id, path, self._app_key.reveal())).encode("utf-8")
        digest = hmac.new(decode_secret_key(self._secret_key), data, hashlib.sha1).digest()
        signature = base64.b64encode(digest).decode("ascii")
        return {
            "x-mc-date": date,
            "x-mc-req-id": request_id,
            "x-mc-app-id": self.app_id,
            "Authorization": f"MC {self._access_key}:{signature}",
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` and send it once; a 401 is final (the caller reports it)."""
        # raw_path keeps the percent-encoding the server sees; the query is not part of the signed uri.
        path = request.url.raw_path.partition(b"?")[0].decode("ascii")
        request.headers.update(self.headers_for(path))
        yield request
