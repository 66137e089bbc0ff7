"""The simulator's answers: a reply, and the Mimecast envelopes of a page, a ``fail[]`` error and a gateway error."""

from __future__ import annotations

from typing import Any

__all__ = ["Reply", "fail_reply", "gateway_reply", "ok_reply"]


class Reply:
    """What the server answers: a status, a JSON-able body (or raw ``bytes``, sent as HTML) and headers."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def fail_reply(code: str, message: str, *, key: object = None, retryable: bool = False, status: int = 200) -> Reply:
    """A Mimecast ``fail[]`` answer (HTTP 200 by default, as Mimecast sends it)."""
    entry: dict[str, object] = {"errors": [{"code": code, "message": message, "retryable": retryable}]}
    if key is not None:
        entry = {"key": key, **entry}
    return Reply(status, {"meta": {"status": status}, "data": [], "fail": [entry]})


def gateway_reply(status: int, code: str, message: str) -> Reply:
    """The OAuth gateway's flat error answer."""
    return Reply(status, {"fail": [{"code": code, "message": message}]})


def ok_reply(data: list[Any], page_size: int, total: int, next_token: str | None) -> Reply:
    """One page of a listing."""
    pagination: dict[str, object] = {"pageSize": page_size, "totalCount": total}
    if next_token:
        pagination["next"] = next_token
    return Reply(200, {"meta": {"status": 200, "pagination": pagination}, "data": data, "fail": []})
