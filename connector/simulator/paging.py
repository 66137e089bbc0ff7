"""Page tokens: opaque, signed with a per-server key, and bound to the query they came from.

An audit token also pins the "as of" instant of its listing's first page, so a listing stays consistent while the
clock moves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import orjson

from connector.simulator.replies import Reply, fail_reply

__all__ = ["PageTokens"]


class PageTokens:
    """Issues and checks page tokens."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(16)

    @staticmethod
    def digest(*parts: object) -> str:
        """A short stable digest of a query, which a token is bound to."""
        return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]

    def encode(self, query: str, offset: int, asof: int) -> str:
        """A signed token for the page at ``offset`` of ``query`` as of ``asof``."""
        payload = base64.urlsafe_b64encode(orjson.dumps([query, offset, asof])).decode().rstrip("=")
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        return f"eNp{payload}.{mac}"

    def decode(self, token: object, query: str) -> tuple[int, int] | Reply:
        """(offset, asof) of a token this server signed for ``query``; the Mimecast error reply otherwise."""
        bad = fail_reply(
            "err_pagination_token_invalid",
            "pageToken is not valid for this request",
            key={"pageToken": token},
        )
        if not isinstance(token, str) or not token.startswith("eNp") or "." not in token:
            return bad
        payload, _, mac = token[3:].partition(".")
        expected = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(mac, expected):
            return bad
        try:
            bound, offset, asof = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return bad
        if bound != query:
            return fail_reply(
                "err_pagination_token_invalid",
                "pageToken belongs to a different query",
                key={"pageToken": token},
            )
        return int(offset), int(asof)
