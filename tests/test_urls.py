"""Tests for connector.api.urls: https enforcement, loopback exception and the legacy API 1.0 hosts."""

from __future__ import annotations

import pytest

from connector.api.urls import default_token_url, validate_base_url
from connector.config import Config
from connector.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.services.mimecast.com", "https://api.services.mimecast.com"),
        ("https://api.services.mimecast.com/", "https://api.services.mimecast.com"),
        (" https://uk-api.services.mimecast.com// ", "https://uk-api.services.mimecast.com"),
        ("https://us-api.services.mimecast.com", "https://us-api.services.mimecast.com"),
        ("https://proxy.example.org:8443/mimecast", "https://proxy.example.org:8443/mimecast"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("HTTP://LOCALHOST", "HTTP://LOCALHOST"),
    ],
)
def test_accepts_https_and_loopback_http(url: str, expected: str) -> None:
    assert validate_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.services.mimecast.com",
        "http://10.0.0.5:8080",
        "http://127.0.0.2",
        "http://localhost.evil.com",
    ],
)
def test_refuses_plain_http_for_non_loopback_host(url: str) -> None:
    with pytest.raises(ConfigError, match="must use https") as info:
        validate_base_url(url)
    assert info.value.parameter == "api_base_url"


@pytest.mark.parametrize("host", ["eu-api.mimecast.com", "us-api.mimecast.com", "jer-api.mimecast.com"])
def test_legacy_api_1_hosts_get_a_plain_message(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_base_url(f"https://{host}/", parameter="token_url")
    message = str(info.value)
    assert "API 1.0 only" in message
    assert "https://api.services.mimecast.com" in message
    assert "-api.services.mimecast.com" in message
    assert host in message
    assert info.value.parameter == "token_url"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "api.services.mimecast.com",
        "ftp://api.services.mimecast.com",
        "https://",
        "https://host:99999",
    ],
)
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_base_url(url)
    assert info.value.parameter == "api_base_url"


def test_credentials_query_and_fragment_are_refused() -> None:
    with pytest.raises(ConfigError, match="user name or password"):
        validate_base_url("https://user:pw@api.services.mimecast.com")
    with pytest.raises(ConfigError, match="query"):
        validate_base_url("https://api.services.mimecast.com/?x=1")
    with pytest.raises(ConfigError, match="fragment"):
        validate_base_url("https://api.services.mimecast.com/#x")


def test_default_token_url() -> None:
    assert default_token_url("https://api.services.mimecast.com") == "https://api.services.mimecast.com/oauth/token"
    assert default_token_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/oauth/token"


@pytest.mark.parametrize("parameter", ["api_base_url", "token_url"])
@pytest.mark.parametrize(
    "url",
    [
        "https://api.services\x00.mimecast.com",
        "https://api.services.mimecast.com\n.evil.example",
        "https://api.services.mime\u202emoc.tsacemim.evil.example",
        "https://api.services.mime\u200bcast.com",
        "https://api.services.mimecast.com/\x7fpath",
        "https://api.services.mimecast.com/a b",
        "https://api.services.mimecast.com/a\u00a0b",
        "https://[::1",
    ],
)
def test_hidden_characters_or_an_address_httpx_refuses_are_a_config_error(url: str, parameter: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_base_url(url, parameter=parameter)
    assert caught.value.parameter == parameter and parameter in str(caught.value)


def test_hidden_characters_are_refused_by_config_too() -> None:
    params = {"client_key": "key", "client_secret": "s" * 24, "token_url": "https://api.services.mimecast.com\u202e/x"}
    with pytest.raises(ConfigError) as caught:
        Config.from_parameters({**params, "api_base_url": "https://api.services.mimecast.com"}, environ={})
    assert caught.value.parameter == "token_url"
