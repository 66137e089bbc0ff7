"""Tests for connector.api.urls: https enforcement, loopback exception, and the hosts that fit each auth_method."""

from __future__ import annotations

import pytest

from connector.api.urls import API_V1_HOSTS, default_token_url, validate_base_url
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


# -- per auth_method ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", API_V1_HOSTS)
def test_api_v1_hosts_are_the_base_urls_of_api_keys_v1(host: str) -> None:
    assert validate_base_url(f"https://{host}/", auth_method="api_keys_v1") == f"https://{host}"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000/", "http://[::1]:9000"])
def test_loopback_http_stays_allowed_for_api_keys_v1(url: str) -> None:
    assert validate_base_url(url, auth_method="api_keys_v1") == url.rstrip("/")


@pytest.mark.parametrize(
    "host", ["api.services.mimecast.com", "uk-api.services.mimecast.com", "us-api.services.mimecast.com"]
)
def test_api_v2_hosts_are_refused_for_api_keys_v1_with_the_reason(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_base_url(f"https://{host}", auth_method="api_keys_v1")
    message = str(info.value)
    assert info.value.parameter == "api_base_url"
    assert host in message and "API 2.0" in message and "not API 1.0 keys" in message
    assert "auth_method api_keys_v1" in message and "https://eu-api.mimecast.com" in message
    assert "auth_method to oauth2" in message


@pytest.mark.parametrize("host", ["proxy.example.org", "api.mimecast.com", "eu-api.mimecast.com.evil.example"])
def test_other_hosts_are_refused_for_api_keys_v1_naming_the_hosts_that_fit(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_base_url(f"https://{host}", auth_method="api_keys_v1")
    message = str(info.value)
    assert info.value.parameter == "api_base_url"
    assert "not a Mimecast API 1.0 host" in message and "replayed" in message
    assert all(f"https://{name}" in message for name in API_V1_HOSTS)


@pytest.mark.parametrize("host", [host for host in API_V1_HOSTS if host.endswith("-api.mimecast.com")])
def test_oauth2_refuses_the_api_v1_hosts_and_points_to_api_keys_v1(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_base_url(f"https://{host}", auth_method="oauth2")
    message = str(info.value)
    assert "API 1.0 only" in message and "auth_method oauth2" in message and "api_keys_v1" in message


def test_an_unknown_auth_method_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="auth_method"):
        validate_base_url("https://api.services.mimecast.com", auth_method="basic")
