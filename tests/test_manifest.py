"""Tests that manifest.json is valid, matches Config, the package version and the README table."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
import typing
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from connector.api.urls import AUTH_METHODS
from connector.config import APP_KEY_ENV, CLIENT_SECRET_ENV, SECRET_KEY_ENV, Config, parameter_specs
from connector.resources import manifest_text
from connector.secret import Secret

ROOT = Path(__file__).resolve().parent.parent


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_readme_config", ROOT / "scripts/generate_readme_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_text())
    return data


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "schemas/manifest.schema.json").read_text(encoding="utf-8"))
    return data


def test_manifest_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_manifest_is_valid(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(manifest)]
    assert errors == []


def test_resource_locator_reads_the_repository_manifest(manifest: dict[str, Any]) -> None:
    assert manifest == json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))


def _param(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in manifest["parameters"] if p["name"] == name)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.pop("entry_point"),
        lambda m: _param(m, "api_base_url").update(type="float"),
        lambda m: _param(m, "client_secret").update(secret=False),
        lambda m: _param(m, "initial_lookback_hours").pop("max"),
        lambda m: _param(m, "client_key").update(default="x"),
        lambda m: _param(m, "page_size").update(min_length=3),
        lambda m: _param(m, "app_id").update(required_when={"auth_method": "api_keys_v1"}),
        lambda m: _param(m, "app_id").update(only_when={"auth_method": "api_keys_v1", "log_level": "DEBUG"}),
        lambda m: _param(m, "app_id").update(only_when={"Auth-Method": "api_keys_v1"}),
        lambda m: m["tables"][0].update(schema="/etc/passwd"),
        lambda m: m.update(extra=True),
    ],
)
def test_schema_rejects_drift(manifest: dict[str, Any], schema: dict[str, Any], mutate: Any) -> None:
    broken = json.loads(json.dumps(manifest))
    mutate(broken)
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_identity(manifest: dict[str, Any]) -> None:
    assert manifest["name"] == "mimecast-ocsf"
    assert manifest["vendor"] == "Mimecast"
    assert manifest["api_version"] == "2.0"
    assert manifest["ocsf_version"] == "1.8.0"
    assert manifest["auth_method"] == "oauth2_client_credentials"
    assert manifest["entry_point"] == {
        "group": "siem.connectors",
        "name": "mimecast",
        "object": "connector.host:MimecastConnector",
    }


def test_version_equals_package_version(manifest: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert manifest["version"] == pyproject["project"]["version"]


def test_tables(manifest: dict[str, Any]) -> None:
    tables = {table["name"]: table for table in manifest["tables"]}
    assert {name: table["class_uid"] for name, table in tables.items()} == {
        "authentication": 3002,
        "account_change": 3001,
        "group_management": 3006,
        "user_inventory": 5003,
        "base_event": 0,
        "email_activity": 4009,
        "email_file_activity": 4011,
        "email_url_activity": 4012,
        "detection_finding": 2004,
        "data_security_finding": 2006,
    }
    assert [name for name, table in tables.items() if table.get("optional")] == ["base_event"]
    # action_id / disposition_id exist only with the security_control profile: the email classes are built with it
    with_profile = {name for name, table in tables.items() if table.get("profiles") == ["security_control"]}
    assert with_profile == {
        name for name, table in tables.items() if table["class_uid"] in (4009, 4011, 4012, 2004, 2006)
    }
    for name, table in tables.items():
        assert re.fullmatch(r"schemas/[a-z_]+\.json", table["schema"])
        assert table["schema"] == f"schemas/{name}.json"
        # Generated by scripts/generate_schemas.py from the ocsf-json-schema package.
        assert (ROOT / table["schema"]).is_file(), f"{table['schema']} is missing: run make schemas"


def test_event_types_match_the_event_types_parameter(manifest: dict[str, Any]) -> None:
    values = [event_type["value"] for event_type in manifest["event_types"]]
    assert values == ["audit", "user_management", "ttp_url", "ttp_attachment", "ttp_impersonation", "dlp", "siem"]
    assert list(parameter_specs()["event_types"].choices) == values
    # the TTP, DLP and SIEM streams are off by default: an existing configuration collects what it collected before
    assert parameter_specs()["event_types"].default == ["audit", "user_management"]
    products = {event_type["value"]: event_type["product"] for event_type in manifest["event_types"]}
    assert {products[name] for name in values[2:6]} == {"Security Events"}
    assert products["siem"] == "Threats, Security Events, and Data"


def test_parameters_and_config_fields_match() -> None:
    assert list(parameter_specs()) == [field.name for field in fields(Config)]


def test_secret_flags_match_secret_typed_fields() -> None:
    hints = typing.get_type_hints(Config)
    secret_fields = {name for name, hint in hints.items() if hint is Secret}
    secret_params = {name for name, spec in parameter_specs().items() if spec.secret}
    assert secret_fields == secret_params == {"client_secret", "app_key", "secret_key"}


@pytest.mark.parametrize(
    ("name", "env"), [("client_secret", CLIENT_SECRET_ENV), ("app_key", APP_KEY_ENV), ("secret_key", SECRET_KEY_ENV)]
)
def test_each_secret_mentions_its_environment_variable(name: str, env: str) -> None:
    spec = parameter_specs()[name]
    assert spec.env == env
    assert env in spec.description


def test_auth_method_choices_are_the_ones_the_code_knows() -> None:
    spec = parameter_specs()["auth_method"]
    assert spec.choices == AUTH_METHODS and spec.default == "oauth2"


def test_conditions_name_an_earlier_enum_parameter_and_one_of_its_choices() -> None:
    seen: dict[str, tuple[str, ...]] = {}
    for name, spec in parameter_specs().items():
        for condition in (spec.only_when, spec.required_when):
            if condition is not None:
                other, value = condition
                assert other in seen, f"{name}: {other} must be declared before it"
                assert value in seen[other], f"{name}: {value!r} is not a choice of {other}"
        if spec.type == "enum":
            seen[name] = spec.choices


def test_each_auth_method_has_its_own_credentials() -> None:
    only = {name: spec.only_when for name, spec in parameter_specs().items() if spec.only_when}
    assert only == {
        "token_url": ("auth_method", "oauth2"),
        "allow_external_token_url": ("auth_method", "oauth2"),
        "client_key": ("auth_method", "oauth2"),
        "client_secret": ("auth_method", "oauth2"),
        "app_id": ("auth_method", "api_keys_v1"),
        "app_key": ("auth_method", "api_keys_v1"),
        "access_key": ("auth_method", "api_keys_v1"),
        "secret_key": ("auth_method", "api_keys_v1"),
    }
    assert parameter_specs()["api_base_url"].required_when == ("auth_method", "api_keys_v1")


def test_readme_table_in_sync(manifest: dict[str, Any]) -> None:
    generator = load_generator()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert generator.replace_block(readme, generator.render_table(manifest)) == readme, (
        "README configuration table is stale: run python scripts/generate_readme_config.py"
    )


def test_readme_generator_check_mode(tmp_path: Path, manifest: dict[str, Any]) -> None:
    generator = load_generator()
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{generator.START_MARKER}\nold\n{generator.END_MARKER}\ntail\n", encoding="utf-8")
    assert generator.main(["--check", "--readme", str(readme)]) == 1
    assert generator.main(["--readme", str(readme)]) == 0
    assert generator.main(["--check", "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# T\n\n") and text.endswith(f"{generator.END_MARKER}\ntail\n")
    assert "| `page_size` | integer (1..1000) | no | `500` |" in text
    assert "| `client_key` | string | yes, if `auth_method` = `oauth2` | — |" in text
    assert "| `token_url` | string | no (`auth_method` = `oauth2` only) | (empty) |" in text
    assert "| `api_base_url` | string | yes, if `auth_method` = `api_keys_v1` |" in text


def test_the_declared_entry_point_is_installed_and_loads_the_host_class() -> None:
    from importlib.metadata import entry_points

    from connector.host import MimecastConnector

    declared = json.loads(manifest_text())["entry_point"]
    found = entry_points(group=declared["group"])[declared["name"]]
    assert found.value == declared["object"]
    assert found.load() is MimecastConnector
