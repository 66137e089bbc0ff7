"""Validation of the Mimecast base URL and token URL parameters.

The connector sends credentials to these URLs (a client secret and bearer tokens, or API 1.0 request
signatures), so they must be https. Plain http is only accepted for loopback hosts, which the tests and the
embedded simulator use. Which hosts fit depends on ``auth_method`` (see ``docs/mimecast-api-v1.md``):

* ``oauth2``: any https host except the regional API 1.0 hosts (``eu-api.mimecast.com`` and friends), which
  reject API 2.0 bearer tokens; a user who configures one gets a plain explanation instead of a confusing 401.
* ``api_keys_v1``: only the regional API 1.0 hosts (:data:`API_V1_HOSTS`). The API 2.0 gateway
  (``*.services.mimecast.com``) does not accept API 1.0 signatures, and since a signature covers neither the host
  nor the body, one sent to any other host could be replayed against Mimecast.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import httpx

from connector.errors import ConfigError

__all__ = [
    "API_V1_HOSTS",
    "AUTH_METHODS",
    "LOOPBACK_HOSTS",
    "check_token_host",
    "default_token_url",
    "is_loopback_host",
    "is_mimecast_host",
    "token_host_note",
    "validate_base_url",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# Unicode categories refused anywhere in a URL: control (Cc), format (Cf: bidi overrides, zero-width), and every
# kind of space or separator (Zs, Zl, Zp).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})

_LEGACY_HOST = re.compile(r"^[a-z]{2,}-api\.mimecast\.com$")
_API_V2_HOST = re.compile(r"^(?:[a-z0-9-]+\.)*services\.mimecast\.com$")

AUTH_METHODS = ("oauth2", "api_keys_v1")
"""The values of the ``auth_method`` parameter, in manifest order (the first is the default)."""

API_V1_HOSTS = (
    "eu-api.mimecast.com",
    "de-api.mimecast.com",
    "us-api.mimecast.com",
    "usb-api.mimecast.com",
    "ca-api.mimecast.com",
    "za-api.mimecast.com",
    "au-api.mimecast.com",
    "jer-api.mimecast.com",
    "je-api.mimecast.com",
    "uspcom-api.mimecast-pscom-us.com",
)
"""The regional API 1.0 hosts, the only base URLs accepted with ``auth_method`` ``api_keys_v1`` (besides loopback).
Mimecast's own pages spell the offshore (Jersey) host both ``jer-api`` and ``je-api``; both are listed."""

_V2_EXAMPLES = (
    "https://api.services.mimecast.com or your regional host, such as https://uk-api.services.mimecast.com or "
    "https://us-api.services.mimecast.com (any *-api.services.mimecast.com)"
)


def validate_base_url(url: str, parameter: str = "api_base_url", *, auth_method: str = "oauth2") -> str:
    """Check a Mimecast URL parameter and return it without a trailing slash.

    Args:
        url: The configured URL, e.g. ``https://api.services.mimecast.com``.
        parameter: The parameter name reported in errors, so the user knows which setting to fix.
        auth_method: ``oauth2`` or ``api_keys_v1``: which hosts fit (see the module docstring).

    Returns:
        The URL, stripped of surrounding whitespace and trailing slashes.

    Raises:
        ConfigError: The URL is empty or malformed (httpx would not accept it), holds a control, format or
            whitespace character, is not https (and not a loopback host), carries user
            credentials, a query or a fragment, or names a host that does not fit ``auth_method``.
        ValueError: ``auth_method`` is not one of :data:`AUTH_METHODS` (a programming error).
    """
    if auth_method not in AUTH_METHODS:
        raise ValueError(f"auth_method must be one of {AUTH_METHODS}, not {auth_method!r}")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{parameter} is required (e.g. https://api.services.mimecast.com)", parameter=parameter)
    text = url.strip().rstrip("/")
    hidden = next((char for char in text if unicodedata.category(char) in _HIDDEN_CATEGORIES), None)
    if hidden is not None:  # bidi overrides and zero-width characters make a URL read as another host
        raise ConfigError(
            f"{parameter} must not contain control, format (bidi, zero-width) or whitespace characters; "
            f"found U+{ord(hidden):04X}",
            parameter=parameter,
        )
    try:
        httpx.URL(text)  # what passes here must also be accepted where the client is built
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError on a malformed port
    except (ValueError, httpx.InvalidURL) as exc:
        raise ConfigError(f"{parameter} is not a valid URL: {exc}", parameter=parameter) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"{parameter} must be an absolute https URL such as https://api.services.mimecast.com",
            parameter=parameter,
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{parameter} must not contain a user name or password; credentials go in their own parameters",
            parameter=parameter,
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{parameter} must not contain a query string or fragment", parameter=parameter)
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"{parameter} must use https: the credentials would travel in clear text over http (plain http is "
            f"only allowed for 127.0.0.1, ::1 and localhost)",
            parameter=parameter,
        )
    if host not in LOOPBACK_HOSTS:
        _check_host(host, parameter, auth_method)
    return text


def _check_host(host: str, parameter: str, auth_method: str) -> None:
    """Refuse a host that cannot serve ``auth_method``; the message says which hosts fit."""
    name = host.rstrip(".")
    if auth_method == "oauth2":
        if _LEGACY_HOST.match(name):
            raise ConfigError(
                f"{parameter} names {host}, a legacy Mimecast host that serves API 1.0 only and rejects API 2.0 "
                f"tokens. With auth_method oauth2 use {_V2_EXAMPLES}; or, if this tenant's integration runs on "
                f"API 1.0 keys, set auth_method to api_keys_v1.",
                parameter=parameter,
            )
        return
    v1_hosts = ", ".join(f"https://{name}" for name in API_V1_HOSTS)
    if _API_V2_HOST.match(name):
        raise ConfigError(
            f"{parameter} names {host}, a Mimecast API 2.0 host: it accepts OAuth 2.0 tokens only, not API 1.0 "
            f"keys. With auth_method api_keys_v1 use your region's API 1.0 host, one of {v1_hosts}; or set "
            f"auth_method to oauth2 with the Client ID and Client Secret of an API 2.0 application.",
            parameter=parameter,
        )
    if name not in API_V1_HOSTS:
        raise ConfigError(
            f"{parameter} names {host}, which is not a Mimecast API 1.0 host. With auth_method api_keys_v1 it must "
            f"be your region's API 1.0 host, one of {v1_hosts}: an API 1.0 signature covers neither the host nor "
            f"the body, so one sent anywhere else could be replayed against Mimecast.",
            parameter=parameter,
        )


def default_token_url(base: str) -> str:
    """The OAuth token URL Mimecast serves next to the API: ``{base}/oauth/token``.

    Args:
        base: A base URL, normally already checked with :func:`validate_base_url`.
    """
    return base.rstrip("/") + "/oauth/token"


def is_mimecast_host(host: str) -> bool:
    """Whether ``host`` is ``mimecast.com`` or one of its subdomains (the API and token hosts are)."""
    name = host.lower().rstrip(".")
    return name == "mimecast.com" or name.endswith(".mimecast.com")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host, IPv6 without brackets) is ``localhost`` or a loopback address (127.0.0.0/8,
    ``::1``, an IPv4-mapped loopback)."""
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def check_token_host(token_url: str, base_url: str, *, allow_other: bool) -> None:
    """Refuse a ``token_url`` on a host the client secret should not be sent to.

    Accepted without asking: a Mimecast host (``*.mimecast.com``), the host of ``base_url``, or a loopback host.
    Any other host (a typo, a copied example, a look-alike domain) would receive the client secret in the token
    request, so it needs ``allow_external_token_url``.

    Args:
        token_url: The validated token URL.
        base_url: The validated API base URL.
        allow_other: The ``allow_external_token_url`` parameter.

    Raises:
        ConfigError: naming ``token_url``, when its host is not accepted and ``allow_other`` is false.
    """
    host = _host(token_url)
    if allow_other or is_mimecast_host(host) or host == _host(base_url) or host in LOOPBACK_HOSTS:
        return
    raise ConfigError(
        f"token_url is on {host}, which is neither a Mimecast host (*.mimecast.com) nor the api_base_url host; "
        f"the client secret would be sent there. Leave token_url empty to use {{api_base_url}}/oauth/token, or "
        f"set allow_external_token_url to true if {host} is meant to receive it.",
        parameter="token_url",
    )


def token_host_note(token_url: str, base_url: str) -> str | None:
    """The warning ``check`` prints when the client secret goes to a host that is not Mimecast's (the API's own
    host, or one allowed by ``allow_external_token_url``); None for a Mimecast or loopback host, and for an empty
    ``token_url`` (``auth_method`` ``api_keys_v1`` has no token endpoint)."""
    if not token_url:  # api_keys_v1: no token endpoint, nothing is sent anywhere but api_base_url
        return None
    host = _host(token_url)
    if is_mimecast_host(host) or host in LOOPBACK_HOSTS:
        return None
    kind = "it is the api_base_url host" if host == _host(base_url) else "allowed by allow_external_token_url"
    return f"WARNING: the client secret is sent to {host}, which is not a Mimecast host ({kind}; see token_url)"
