"""Shared helpers for the HTTP client tests: fixture loading, a fake clock and a recording sleep.

Fixtures come from tests/fixtures/api-responses.json (a copy of the sample API responses), so tests never read
outside the repository.
"""

from __future__ import annotations

import copy
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "AUDIT_URL",
    "BASE",
    "CLIENT_KEY",
    "DOMAINS_URL",
    "FIND_GROUPS_URL",
    "GROUP_MEMBERS_URL",
    "SECRET_VALUE",
    "TOKEN_URL",
    "USERS_URL",
    "FakeClock",
    "ZeroRandom",
    "fixture",
    "token_json",
]

BASE = "https://api.services.mimecast.com"
TOKEN_URL = f"{BASE}/oauth/token"
AUDIT_URL = f"{BASE}/api/audit/get-audit-events"
DOMAINS_URL = f"{BASE}/api/domain/get-internal-domain"
USERS_URL = f"{BASE}/api/user/get-internal-users"
FIND_GROUPS_URL = f"{BASE}/api/directory/find-groups"
GROUP_MEMBERS_URL = f"{BASE}/api/directory/get-group-members"

CLIENT_KEY = "client-key-123"
SECRET_VALUE = "s3cr+t&x=1%2F/ü-long-enough"

_FIXTURES = Path(__file__).parent / "fixtures" / "api-responses.json"


@cache
def _load() -> Any:
    return json.loads(_FIXTURES.read_text(encoding="utf-8"))


def fixture(name: str) -> Any:
    """A deep copy of entry ``name`` of tests/fixtures/api-responses.json, safe to modify."""
    return copy.deepcopy(_load()[name])


def token_json(token: str, expires_in: int = 1800) -> dict[str, Any]:
    """A token endpoint answer carrying ``token``."""
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


class FakeClock:
    """A monotonic clock the test moves by hand; ``sleep`` advances it and records the requested delays."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ZeroRandom(random.Random):
    """A Random whose ``random()`` is always 0.0, which turns jitter off."""

    def random(self) -> float:
        return 0.0
