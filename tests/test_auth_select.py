"""Tests for connector.api.auth_select.build_auth: the auth auth_method names, with the configuration's keys."""

from __future__ import annotations

import pickle

import httpx
import pytest
from helpers_http import FakeClock, token_json
from helpers_v1 import ACCESS_KEY, APP_ID, V1_PARAMETERS
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.auth_select import auth_method_note, build_auth
from connector.api.auth_v1 import ApiKeysV1Auth
from connector.api.urls import token_host_note
from connector.config import Config
from connector.errors import ConfigError

OAUTH2 = {"client_key": "client-id-1", "client_secret": "s3cr3t+&=value-long-enough"}
OK = {"meta": {"status": 200}, "data": [], "fail": []}


def test_oauth2_builds_the_token_auth_on_the_configured_token_url(httpx_mock: HTTPXMock) -> None:
    config = Config.from_parameters({**OAUTH2, "api_base_url": "https://uk-api.services.mimecast.com"}, environ={})
    auth = build_auth(config, clock=FakeClock())
    assert isinstance(auth, MimecastAuth)
    assert auth.token_url == "https://uk-api.services.mimecast.com/oauth/token"
    httpx_mock.add_response(url=auth.token_url, json=token_json("t1"))
    httpx_mock.add_response(url=f"{config.api_base_url}/api/audit/get-audit-events", json=OK)
    with httpx.Client(base_url=config.api_base_url, auth=auth) as client:
        client.post("/api/audit/get-audit-events", json={})
    token_request, api_request = httpx_mock.get_requests()
    assert b"client_id=client-id-1" in token_request.content
    assert api_request.headers["Authorization"] == "Bearer t1"


def test_api_keys_v1_builds_the_signing_auth_with_the_wall_clock(httpx_mock: HTTPXMock) -> None:
    config = Config.from_parameters(V1_PARAMETERS, environ={})
    auth = build_auth(config, wall_clock=lambda: 1448369411)
    assert isinstance(auth, ApiKeysV1Auth)
    assert (auth.token_url, auth.token_refreshes, auth.app_id) == (None, 0, APP_ID)
    httpx_mock.add_response(url=f"{config.api_base_url}/api/audit/get-audit-events", json=OK)
    with httpx.Client(base_url=config.api_base_url, auth=auth) as client:
        client.post("/api/audit/get-audit-events", json={})
    sent = httpx_mock.get_request()
    assert sent is not None
    assert sent.headers["x-mc-date"] == "Tue, 24 Nov 2015 12:50:11 UTC"
    assert sent.headers["x-mc-app-id"] == APP_ID
    assert sent.headers["Authorization"].startswith(f"MC {ACCESS_KEY}:")


@pytest.mark.parametrize(("params", "first"), [(OAUTH2, "client_secret"), (V1_PARAMETERS, "app_key")])
def test_a_configuration_without_its_secrets_is_refused_naming_the_first(params: dict[str, object], first: str) -> None:
    copy = pickle.loads(pickle.dumps(Config.from_parameters(params, environ={})))
    with pytest.raises(ConfigError) as caught:
        build_auth(copy)
    assert caught.value.parameter == first


def test_check_warns_about_api_v1_keys_and_says_nothing_for_oauth2() -> None:
    assert auth_method_note(Config.from_parameters(OAUTH2, environ={})) is None
    config = Config.from_parameters(V1_PARAMETERS, environ={})
    note = auth_method_note(config)
    assert note is not None and note.startswith("WARNING: auth_method api_keys_v1")
    assert config.api_base_url in note and APP_ID in note and "API 2.0" in note and "/api/..." in note
    # There is no token URL, so the token-host warning has nothing to say.
    assert token_host_note(config.token_url, config.api_base_url) is None
