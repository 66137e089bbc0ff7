"""API 1.0 key checking for the simulator: with :class:`ApiV1Keys` configured, it answers as a regional API 1.0
host (``eu-api.mimecast.com`` and friends) and verifies the HMAC-SHA1 signature of every ``/api/...`` request.

Written from Mimecast's API 1.0 "Authorization" page (see ``docs/mimecast-api-v1.md``), independently of the
connector's ``connector.api.auth_v1``: the server recomputes the signature from the request's own headers and path
and its own keys, so a mistake in the client cannot be mirrored here.

How it answers (the API 1.0 error shape: ``{"meta": {"status": N}, "data": [], "fail": [{"errors": [{"code",
"message", "retryable": false}]}]}`` with the same HTTP status):

* a wrong ``x-mc-app-id``: 401 ``err_developer_key`` "App ID is invalid" (the code and message peers have seen;
  the HTTP status is our inference from the documented meaning of 401);
* a missing header, an ``x-mc-date`` not in the documented format, an unknown access key, another realm than
  ``MC`` (a Bearer token, say) or a signature that does not match: 401 ``err_xdk_invalid_signature``
  "0004 Invalid Signature", the answer recorded for a bad signature. Mimecast's pages name no distinct codes for
  the other cases, so the simulator does not invent any;
* after :meth:`~connector.simulator.Simulator.expire_binding`: 418 ``err_xdk_binding_expired`` (418 "Binding
  Expired" is documented; the message is the simulator's).

Mimecast documents no tolerance for the distance between ``x-mc-date`` and its clock, so none is enforced; a date
is only required to be in the documented format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = ["ApiV1Keys", "V1Refusal", "verify_request"]

# "Tue, 24 Nov 2015 12:50:11 UTC" (one of Mimecast's pages writes GMT instead; both are read as UTC).
_MC_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?:0[1-9]|[12][0-9]|3[01]) "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] (?:UTC|GMT)"
)


@dataclass(frozen=True, slots=True)
class ApiV1Keys:
    """The API 1.0 keys the simulator accepts (made up and published: the simulator serves made-up data).

    Attributes:
        app_id: Application ID (``x-mc-app-id``).
        app_key: Application Key, part of the signed data.
        access_key: Access Key, in ``Authorization: MC <access key>:<signature>``.
        secret_key: Secret Key, base64; its decoded bytes are the HMAC-SHA1 key.
    """

    app_id: str = "simulator-app-id"
    app_key: str = "simulator-application-key"
    access_key: str = "simulator-access-key"
    secret_key: str = base64.b64encode(b"simulator-secret-key-for-api-1.0-signing").decode("ascii")

    def __post_init__(self) -> None:
        try:
            key = base64.b64decode(self.secret_key, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key:
            raise ValueError("secret_key must be non-empty base64 text")

    def signature(self, date: str, request_id: str, path: str) -> str:
        """The signature these keys give a request: base64(HMAC-SHA1(secret, "date:id:path:app key"))."""
        data = f"{date}:{request_id}:{path}:{self.app_key}".encode()
        return base64.b64encode(hmac.new(base64.b64decode(self.secret_key), data, hashlib.sha1).digest()).decode()


@dataclass(frozen=True, slots=True)
class V1Refusal:
    """Why a request was refused: the HTTP status and the error code and message of its ``fail`` entry."""

    status: int
    code: str
    message: str


_INVALID_SIGNATURE = V1Refusal(401, "err_xdk_invalid_signature", "0004 Invalid Signature")
_INVALID_APP_ID = V1Refusal(401, "err_developer_key", "App ID is invalid")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def verify_request(keys: ApiV1Keys, path: str, headers: dict[str, str]) -> V1Refusal | None:
    """Check one request's API 1.0 authentication; None when it is correctly signed with ``keys``.

    Args:
        keys: The keys the simulator accepts.
        path: The request path as received (no query).
        headers: The request headers, names in lower case.
    """
    app_id = headers.get("x-mc-app-id")
    if app_id is not None and not _same(app_id, keys.app_id):
        return _INVALID_APP_ID
    date, request_id = headers.get("x-mc-date"), headers.get("x-mc-req-id")
    realm, _, credential = headers.get("authorization", "").partition(" ")
    access_key, _, signature = credential.strip().rpartition(":")
    if app_id is None or not date or not request_id or realm != "MC" or not access_key or not signature:
        return _INVALID_SIGNATURE
    if _MC_DATE.fullmatch(date) is None or not _same(access_key, keys.access_key):
        return _INVALID_SIGNATURE
    if not _same(signature, keys.signature(date, request_id, path)):
        return _INVALID_SIGNATURE
    return None
