"""Build the ``httpx.Auth`` that ``auth_method`` names: OAuth 2.0 client credentials or API 1.0 keys.

One place decides, so the host, the CLI and the client never compare ``auth_method`` strings themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from connector.api.auth import MimecastAuth
from connector.api.auth_v1 import ApiKeysV1Auth
from connector.config import Config

__all__ = ["API_GENERATION", "ConnectorAuth", "auth_method_note", "build_auth"]

API_GENERATION = {"oauth2": "2.0", "api_keys_v1": "1.0"}
"""The Mimecast API generation each ``auth_method`` reaches (a stream declares the generations that serve it)."""

ConnectorAuth = MimecastAuth | ApiKeysV1Auth
"""Either auth. Both are ``httpx.Auth`` with ``token_refreshes`` (0 for API 1.0 keys) and ``token_url`` (None for
API 1.0 keys: there is no token endpoint)."""


def build_auth(
    config: Config,
    *,
    clock: Callable[[], float] = time.monotonic,
    token_skew: float = 60.0,
    wall_clock: Callable[[], float] = time.time,
) -> ConnectorAuth:
    """The auth for ``config.auth_method``; no request is sent here.

    Args:
        config: The validated configuration (its secrets present: see ``Config.with_secret``).
        clock: Monotonic seconds for the OAuth 2.0 token lifetime.
        token_skew: Seconds before expiry at which an OAuth 2.0 token is renewed.
        wall_clock: Seconds since the epoch for the API 1.0 ``x-mc-date`` header.

    Returns:
        ``MimecastAuth`` for ``oauth2``, ``ApiKeysV1Auth`` for ``api_keys_v1``.

    Raises:
        ConfigError: A secret the method needs was withheld by pickling, or a key is malformed; ``parameter``
            names it.
    """
    config.require_secret()
    if config.auth_method == "api_keys_v1":
        return ApiKeysV1Auth(config.app_id, config.app_key, config.access_key, config.secret_key, clock=wall_clock)
    return MimecastAuth(config.token_url, config.client_key, config.client_secret, clock=clock, skew=token_skew)


def auth_method_note(config: Config) -> str | None:
    """The warning ``check`` prints (and a run logs once) for a legacy auth method; None for ``oauth2``.

    API 1.0 keys keep working only until Mimecast expires existing API 1.0 applications (no new ones since June
    2025), and they reach only the ``/api/...`` endpoints, so the user is told both, with the application used.
    """
    if config.auth_method != "api_keys_v1":
        return None
    return (
        f"WARNING: auth_method api_keys_v1: requests to {config.api_base_url} are signed with the API 1.0 keys of "
        f"application {config.app_id}. No new API 1.0 applications can be created since June 2025, and Mimecast "
        f"will expire the existing ones: move to an API 2.0 application (auth_method oauth2) before then. API 1.0 "
        f"keys reach only the /api/... endpoints (see docs/mimecast-api-v1.md)."
    )
