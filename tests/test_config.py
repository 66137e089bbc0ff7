"""Tests for connector.config: defaults, coercion, errors naming the parameter, secrets, file loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_v1 import ACCESS_KEY, APP_ID, APP_KEY, SECRET_KEY, V1_PARAMETERS

from connector.config import APP_KEY_ENV, CLIENT_SECRET_ENV, SECRET_KEY_ENV, Config, parameter_specs
from connector.errors import ConfigError
from connector.secret import NOT_SET, Secret

SECRET = "s3cr3t+&=value-long-enough"
BASE = {"client_key": "client-id-1", "client_secret": SECRET}


def build(environ: dict[str, str] | None = None, **params: object) -> Config:
    return Config.from_parameters({**BASE, **params}, environ=environ or {})


def config_error(environ: dict[str, str] | None = None, **params: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Config.from_parameters(params, environ=environ or {})
    return info.value


def test_defaults_applied() -> None:
    config = build()
    assert config.api_base_url == "https://api.services.mimecast.com"
    assert config.token_url == "https://api.services.mimecast.com/oauth/token"
    assert config.client_key == "client-id-1"
    assert config.client_secret == Secret(SECRET)
    assert config.event_types == ("audit", "user_management")
    assert config.initial_lookback_hours == 24
    assert config.overlap_minutes == 30
    assert config.page_size == 500
    assert config.max_pages_per_call == 10000
    assert config.emit_other_audit_types is False
    assert config.audit_categories == ()
    assert config.concurrency == 4
    assert config.request_timeout_seconds == 30.0
    assert isinstance(config.request_timeout_seconds, float)
    assert config.log_level == "INFO"
    assert config.lag_warning_minutes == 20


def test_every_manifest_default_is_accepted() -> None:
    config = build()
    for name, spec in parameter_specs().items():
        if not spec.required:
            assert getattr(config, name) is not None


def test_token_url_follows_base_url_and_explicit_value_wins() -> None:
    assert build(api_base_url="https://uk-api.services.mimecast.com/").token_url == (
        "https://uk-api.services.mimecast.com/oauth/token"
    )
    config = build(token_url="https://auth.example.com/token", allow_external_token_url=True)
    assert config.token_url == "https://auth.example.com/token"
    assert build(token_url="https://uk-api.services.mimecast.com/oauth/token").token_url.startswith("https://uk-api")
    assert build(api_base_url="http://127.0.0.1:8080").token_url == "http://127.0.0.1:8080/oauth/token"


def test_none_and_blank_count_as_absent() -> None:
    assert build(page_size=None).page_size == 500
    # Hosts storing form fields as strings send "" for a field left empty.
    assert build(page_size="").page_size == 500
    assert build(log_level=" ").log_level == "INFO"
    assert build(emit_other_audit_types="").emit_other_audit_types is False


def test_blank_secret_falls_back_to_environment() -> None:
    config = Config.from_parameters(
        {"client_key": "k", "client_secret": ""}, environ={CLIENT_SECRET_ENV: "env-secret-0123456"}
    )
    assert config.client_secret.reveal() == "env-secret-0123456"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        # Hosts (UCC, env files, form UIs) store every field as a string: accept exact string forms.
        ("page_size", "250", 250),
        ("page_size", " 250 ", 250),
        ("page_size", 250.0, 250),
        ("request_timeout_seconds", "12.5", 12.5),
        ("request_timeout_seconds", 12, 12.0),
        ("emit_other_audit_types", "true", True),
        ("emit_other_audit_types", "No", False),
        ("emit_other_audit_types", True, True),
        ("event_types", "audit", ("audit",)),
        ("event_types", "user_management, audit", ("audit", "user_management")),
        ("event_types", ["user_management", "audit", "audit"], ("audit", "user_management")),
        ("log_level", "debug", "DEBUG"),
        (
            "audit_categories",
            ["authentication_logs", " account_logs ", "authentication_logs"],
            ("authentication_logs", "account_logs"),
        ),
        ("audit_categories", "authentication_logs,account_logs", ("authentication_logs", "account_logs")),
        ("audit_categories", "", ()),
        ("overlap_minutes", 0, 0),
        ("concurrency", 16, 16),
    ],
)
def test_accepted_values(name: str, raw: object, expected: object) -> None:
    assert getattr(build(**{name: raw}), name) == expected


@pytest.mark.parametrize(
    ("name", "raw", "expected_text"),
    [
        ("page_size", 0, "between 1 and 1000"),
        ("page_size", 1001, "between 1 and 1000"),
        ("page_size", "30 pages", "an integer"),
        ("page_size", 2.5, "an integer"),
        ("page_size", True, "an integer"),
        ("concurrency", 17, "between 1 and 16"),
        ("initial_lookback_hours", 1441, "between 1 and 1440"),
        ("overlap_minutes", -1, "between 0 and 1440"),
        ("request_timeout_seconds", 0.5, "between 1 and 300"),
        ("request_timeout_seconds", "nan", "a number"),
        ("request_timeout_seconds", "fast", "a number"),
        ("emit_other_audit_types", "maybe", "a boolean"),
        ("emit_other_audit_types", 1, "a boolean"),
        ("event_types", [], "at least 1 of audit, user_management"),
        ("event_types", "", "at least 1 of audit, user_management"),
        ("event_types", ["audit", "widgets"], "audit, user_management"),
        ("event_types", 3, "audit, user_management"),
        ("log_level", "TRACE", "one of DEBUG, INFO, WARNING, ERROR"),
        ("audit_categories", ["ok", ""], "a list of non-empty strings"),
        ("audit_categories", {"a": 1}, "a list of non-empty strings"),
        ("client_key", "   ", "a non-empty string"),
        ("client_key", 42, "a string"),
        ("api_base_url", "http://api.services.mimecast.com", "https"),
        ("api_base_url", "ftp://example.com", "https"),
        ("api_base_url", "https://eu-api.mimecast.com", "API 1.0"),
        ("token_url", "http://auth.example.com/token", "https"),
    ],
)
def test_bad_values_name_the_parameter_and_the_expectation(name: str, raw: object, expected_text: str) -> None:
    error = config_error(**{**BASE, name: raw})
    assert error.parameter == name
    assert name in str(error)
    assert expected_text in str(error)


def test_unknown_parameter_is_named_with_a_suggestion() -> None:
    error = config_error(**BASE, page_sise=10)
    assert error.parameter == "page_sise"
    assert "'page_sise'" in str(error)
    assert "did you mean 'page_size'" in str(error)


def test_several_unknown_parameters_are_all_named() -> None:
    error = config_error(**BASE, zzz=1, overlap_minute=3)
    assert "'zzz'" in str(error)
    assert "'overlap_minute'" in str(error)
    assert "did you mean 'overlap_minutes'" in str(error)


def test_missing_required_parameter_is_named() -> None:
    error = config_error(client_secret=SECRET)
    assert error.parameter == "client_key"
    assert "'client_key'" in str(error)
    assert "required" in str(error)


def test_client_secret_from_environment_when_absent() -> None:
    config = Config.from_parameters({"client_key": "k"}, environ={CLIENT_SECRET_ENV: "from-env-0123456789"})
    assert config.client_secret.reveal() == "from-env-0123456789"


def test_client_secret_parameter_wins_over_environment() -> None:
    config = build(environ={CLIENT_SECRET_ENV: "from-env"})
    assert config.client_secret.reveal() == SECRET


def test_missing_secret_names_parameter_and_environment_variable() -> None:
    error = config_error(client_key="k", environ={CLIENT_SECRET_ENV: ""})
    assert error.parameter == "client_secret"
    assert "client_secret" in str(error)
    assert CLIENT_SECRET_ENV in str(error)


def test_bad_secret_is_not_echoed() -> None:
    error = config_error(client_key="k", client_secret=["leak-me"])
    assert error.parameter == "client_secret"
    assert "leak-me" not in str(error)
    assert "list" in str(error)


def test_secret_wrapped_value_accepted() -> None:
    assert build(client_secret=Secret("wrapped-0123456789")).client_secret.reveal() == "wrapped-0123456789"


def test_repr_and_redacted_never_show_the_secret() -> None:
    config = build()
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    summary = config.redacted()
    assert SECRET not in json.dumps(summary)
    assert summary["client_secret"] == "**********"
    assert summary["event_types"] == ["audit", "user_management"]
    assert summary["client_key"] == "client-id-1"
    assert set(summary) == set(parameter_specs())


def test_config_is_frozen() -> None:
    config = build()
    with pytest.raises(AttributeError):
        config.page_size = 1  # type: ignore[misc]


def test_from_file_json(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"client_key": "k", "page_size": 100}), encoding="utf-8")
    config = Config.from_file(path, environ={CLIENT_SECRET_ENV: "env-secret-0123456"})
    assert config.page_size == 100
    assert config.client_secret.reveal() == "env-secret-0123456"


def test_from_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("client_key: k\nclient_secret: y-secret-0123456789\nevent_types: [audit]\noverlap_minutes: '45'\n")
    config = Config.from_file(path, environ={})
    assert config.event_types == ("audit",)
    assert config.overlap_minutes == 45


def test_bad_json_file_names_file_and_position_without_content(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text('{"client_key": "k",\n "client_secret": "leaky-secret" oops}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Config.from_file(path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "line 2" in message
    assert "leaky-secret" not in message


def test_bad_yaml_file_names_file_without_content(tmp_path: Path) -> None:
    path = tmp_path / "params.yml"
    path.write_text("client_key: k\nclient_secret: [leaky-secret\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Config.from_file(path, environ={})
    assert str(path) in str(info.value)
    assert "not valid YAML" in str(info.value)
    assert "leaky-secret" not in str(info.value)


def test_file_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold one object") as info:
        Config.from_file(path, environ={})
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match="Cannot read configuration file") as info:
        Config.from_file(path, environ={})
    assert str(path) in str(info.value)


def test_invalid_parameter_in_file_names_file_and_parameter(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({**BASE, "page_size": 0}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Config.from_file(path, environ={})
    assert info.value.parameter == "page_size"
    assert str(path) in str(info.value)
    assert "page_size" in str(info.value)


def test_config_requires_a_secret_object() -> None:
    values = {**build().__dict__, "client_secret": "plain"}
    with pytest.raises(TypeError):
        Config(**values)


@pytest.mark.parametrize(
    "token_url",
    [
        "https://auth.example.com/token",
        "https://mimecast.com.evil.example/oauth/token",  # a look-alike: only *.mimecast.com counts
        "https://evilmimecast.com/oauth/token",
    ],
)
def test_token_url_on_a_foreign_host_needs_the_explicit_parameter(token_url: str) -> None:
    # The client secret goes to token_url: a typo or a look-alike host must not receive it without a word.
    error = config_error(**BASE, token_url=token_url)
    assert error.parameter == "token_url"
    assert "allow_external_token_url" in str(error)
    assert SECRET not in str(error)
    assert build(token_url=token_url, allow_external_token_url="true").token_url == token_url


@pytest.mark.parametrize(
    ("base", "token_url"),
    [
        ("https://api.services.mimecast.com", "https://uk-api.services.mimecast.com/oauth/token"),
        ("https://gateway.example.com", "https://gateway.example.com/oauth/token"),  # the API's own host
        ("https://api.services.mimecast.com", "http://127.0.0.1:9000/token"),  # loopback (tests, local proxies)
    ],
)
def test_token_url_on_a_trusted_host_is_accepted(base: str, token_url: str) -> None:
    assert build(api_base_url=base, token_url=token_url).token_url == token_url


@pytest.mark.parametrize("secret", ["a", "the", "password", "0123456789abcde"])
def test_a_secret_too_short_to_mask_safely_is_refused_without_showing_it(secret: str) -> None:
    error = config_error(client_key="k", client_secret=secret)
    assert error.parameter == "client_secret"
    assert "16 characters" in str(error)
    assert repr(secret) not in str(error)
    assert str(len(secret)) not in str(error).replace("16", "")


def test_a_short_secret_from_the_environment_is_refused_too() -> None:
    error = config_error(client_key="k", environ={CLIENT_SECRET_ENV: "short"})
    assert error.parameter == "client_secret"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("page_size", "\u0661\u0660"),  # Arabic-Indic "10": int() reads it
        ("page_size", "\uff11\uff10"),  # full-width "10"
        ("concurrency", "\u0664"),
        ("request_timeout_seconds", "\u0663\u0660"),  # float() reads it too
        ("request_timeout_seconds", "3\u00b2"),
    ],
)
def test_numbers_in_other_scripts_are_refused(name: str, raw: str) -> None:
    assert config_error(**BASE, **{name: raw}).parameter == name


def test_a_yaml_alias_bomb_is_reported_in_a_short_line(tmp_path: Path) -> None:
    """Six levels of ten aliases: a 300-byte file whose full repr is a million items (it took seconds and
    hundreds of MB; nine levels took 3 GB). The message shows a bounded prefix."""
    levels = ['&a0 ["x"]'] + [f"&a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 7)]
    lines = ["client_key: k", f"client_secret: {SECRET}", f"page_size: [{', '.join(levels)}]"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.from_file(path, environ={})
    assert caught.value.parameter == "page_size"
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_deeply_nested_parameter_file_is_a_config_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text('{"client_key": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(ConfigError, match="deep"):
        Config.from_file(path, environ={})


def test_proxy_url_is_checked_and_its_credentials_never_shown() -> None:
    config = build(proxy_url=" http://alice:pr0xy-pa55word@proxy.example.com:3128 ")
    assert config.proxy_url == "http://alice:pr0xy-pa55word@proxy.example.com:3128"
    assert "pr0xy-pa55word" not in repr(config)
    assert config.redacted()["proxy_url"] == "http://***@proxy.example.com:3128"
    assert build().proxy_url == ""
    for bad in ("ftp://proxy:21", "proxy.example.com:3128", "http://", "http://user:pr0xy-pa55word@:99999"):
        error = config_error(**BASE, proxy_url=bad)
        assert error.parameter == "proxy_url"
        assert "pr0xy-pa55word" not in str(error)


def test_the_proxy_password_is_masked_in_the_logs() -> None:
    from connector.host import MimecastConnector
    from connector.log import safe_line

    MimecastConnector({**BASE, "proxy_url": "http://alice:pr0xy-pa55word-2@proxy.example.com:3128"}, environ={})
    assert "pr0xy-pa55word-2" not in safe_line("proxy said pr0xy-pa55word-2")


# -- auth_method: OAuth 2.0 or API 1.0 keys --------------------------------------------------------------------


def build_v1(environ: dict[str, str] | None = None, **params: object) -> Config:
    merged = {**V1_PARAMETERS, **params}
    return Config.from_parameters({k: v for k, v in merged.items() if v is not None}, environ=environ or {})


def v1_error(environ: dict[str, str] | None = None, **params: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_v1(environ, **params)
    return info.value


def test_oauth2_is_the_default_and_holds_no_api_v1_keys() -> None:
    config = build()
    assert config.auth_method == "oauth2"
    assert (config.app_id, config.access_key) == ("", "")
    assert config.app_key is NOT_SET and config.secret_key is NOT_SET


def test_api_keys_v1_holds_its_four_keys_and_no_oauth2_credentials() -> None:
    config = build_v1()
    assert config.auth_method == "api_keys_v1"
    assert config.api_base_url == "https://eu-api.mimecast.com"
    assert (config.app_id, config.access_key) == (APP_ID, ACCESS_KEY)
    assert config.app_key == Secret(APP_KEY) and config.secret_key == Secret(SECRET_KEY)
    assert (config.client_key, config.token_url, config.allow_external_token_url) == ("", "", False)
    assert config.client_secret is NOT_SET


def test_auth_method_is_matched_without_regard_to_case() -> None:
    assert build_v1(auth_method="API_Keys_V1").auth_method == "api_keys_v1"
    error = v1_error(auth_method="hmac")
    assert error.parameter == "auth_method" and "oauth2, api_keys_v1" in str(error)


def test_the_other_methods_credentials_are_not_read_at_all() -> None:
    # A MIMECAST_CLIENT_SECRET left in the environment (even one too short to accept) does not matter with v1 keys.
    config = build_v1(environ={CLIENT_SECRET_ENV: "short"}, client_key="ignored", token_url="https://x.example/t")
    assert config.client_key == "" and config.client_secret is NOT_SET and config.token_url == ""
    # Nor do API 1.0 keys, even malformed ones, with OAuth 2.0.
    config = build(app_id="bad id", secret_key="not base64!", environ={APP_KEY_ENV: "short"})
    assert config.app_id == "" and config.secret_key is NOT_SET and config.app_key is NOT_SET


@pytest.mark.parametrize("name", ["app_id", "app_key", "access_key", "secret_key"])
def test_each_api_v1_key_is_required_for_api_keys_v1(name: str) -> None:
    error = v1_error(**{name: None})
    assert error.parameter == name
    assert f"'{name}'" in str(error) and "required when auth_method is api_keys_v1" in str(error)


@pytest.mark.parametrize(("name", "env"), [("app_key", APP_KEY_ENV), ("secret_key", SECRET_KEY_ENV)])
def test_api_v1_secrets_come_from_the_environment_when_absent(name: str, env: str) -> None:
    value = APP_KEY if name == "app_key" else SECRET_KEY
    assert getattr(build_v1(environ={env: value}, **{name: None}), name) == Secret(value)
    error = v1_error(**{name: None})
    assert env in str(error)


@pytest.mark.parametrize("name", ["client_key", "client_secret"])
def test_oauth2_credentials_are_required_for_oauth2_naming_the_method(name: str) -> None:
    error = config_error(**{key: value for key, value in BASE.items() if key != name})
    assert error.parameter == name and "required when auth_method is oauth2" in str(error)


def test_api_keys_v1_needs_an_explicit_api_1_0_base_url() -> None:
    error = v1_error(api_base_url=None)
    assert error.parameter == "api_base_url" and "required when auth_method is api_keys_v1" in str(error)


def test_base_urls_must_fit_the_auth_method() -> None:
    error = v1_error(api_base_url="https://api.services.mimecast.com")
    assert error.parameter == "api_base_url" and "not API 1.0 keys" in str(error)
    error = config_error(**BASE, api_base_url="https://eu-api.mimecast.com")
    assert error.parameter == "api_base_url" and "api_keys_v1" in str(error)
    assert build_v1(api_base_url="http://127.0.0.1:8080").api_base_url == "http://127.0.0.1:8080"
    assert build_v1(api_base_url="https://us-api.mimecast.com/").api_base_url == "https://us-api.mimecast.com"


@pytest.mark.parametrize("bad", ["not base64 at all!", "c2VjcmV0c2VjcmV0c2VjcmV", "c2VjcmV0c2VjcmV0\n"])
def test_a_secret_key_that_is_not_base64_fails_fast_without_being_shown(bad: str) -> None:
    error = v1_error(secret_key=bad)
    assert error.parameter == "secret_key" and "base64" in str(error)
    assert bad.strip() not in str(error)


@pytest.mark.parametrize(("name", "value"), [("app_id", "an id"), ("access_key", "key\r\nX-Injected: 1")])
def test_ids_that_cannot_go_in_a_header_fail_fast(name: str, value: str) -> None:
    assert v1_error(**{name: value}).parameter == name


@pytest.mark.parametrize("name", ["app_key", "secret_key"])
def test_a_short_api_v1_secret_is_refused_without_showing_it(name: str) -> None:
    error = v1_error(**{name: "c2hvcnQ="})
    assert error.parameter == name and "at least 16 characters" in str(error) and "c2hvcnQ=" not in str(error)


def test_repr_and_redacted_never_show_the_api_v1_secrets() -> None:
    config = build_v1()
    shown = f"{config!r} {config} {json.dumps(config.redacted())}"
    assert APP_KEY not in shown and SECRET_KEY not in shown
    summary = config.redacted()
    assert summary["app_key"] == summary["secret_key"] == "**********"
    assert summary["client_secret"] == ""  # not set, and nothing to hide
    assert summary["access_key"] == ACCESS_KEY and summary["auth_method"] == "api_keys_v1"


def test_no_config_error_shows_an_api_v1_secret() -> None:
    messages = [
        str(v1_error(api_base_url="https://api.services.mimecast.com")),
        str(v1_error(app_id="bad id")),
        str(v1_error(page_size=0)),
        str(v1_error(unknown_thing=1)),
    ]
    for message in messages:
        assert APP_KEY not in message and SECRET_KEY not in message
