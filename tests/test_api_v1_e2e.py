"""API 1.0 keys end to end: the connector, configured with auth_method api_keys_v1, collects audit and directory
from the simulator acting as an API 1.0 host, and every refusal names what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_v1 import ACCESS_KEY, APP_ID, APP_KEY, SECRET_KEY, V1_PARAMETERS

from connector.cli import main
from connector.errors import AuthError, ConfigError
from connector.host import MimecastConnector
from connector.simulator.api_v1 import ApiV1Keys
from connector.simulator.server import Simulator
from connector.simulator.tenant import TenantSpec

KEYS = ApiV1Keys(app_id=APP_ID, app_key=APP_KEY, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


@pytest.fixture
def v1_sim() -> Iterator[Simulator]:
    with Simulator(TenantSpec(seed=4, users=12, groups=3, days=0.5), api_keys_v1=KEYS) as sim:
        yield sim


def parameters(sim: Simulator, **changes: object) -> dict[str, object]:
    return {**V1_PARAMETERS, "api_base_url": sim.base_url, "inventory_interval_minutes": 0, **changes}


def test_audit_and_directory_are_collected_with_signed_requests(v1_sim: Simulator) -> None:
    with MimecastConnector(parameters(v1_sim), environ={}) as connector:
        connector.check()
        tables = {batch.table for batch in connector.collect(None) if batch.events}
        summary = connector.summary
    assert summary.ok, summary.lines()
    assert {"authentication", "user_inventory"} <= tables
    assert summary.http["token_refreshes"] == 0  # no token endpoint on an API 1.0 host
    assert v1_sim.counters.unauthorized == 0 and v1_sim.counters.repeated_request_ids == 0


def test_a_wrong_secret_key_is_a_final_401_that_names_the_keys(v1_sim: Simulator) -> None:
    wrong = "d3JvbmctYnV0LXZhbGlkLWJhc2U2NC1zZWNyZXQta2V5"  # valid base64, another key
    with MimecastConnector(parameters(v1_sim, secret_key=wrong, event_types=["audit"]), environ={}) as connector:
        assert [b.events for b in connector.collect(None)] == []
        summary = connector.summary
    message = summary.failures["audit"]
    assert summary.exit_code == AuthError.exit_code
    assert "API 1.0 keys" in message and "app_id, app_key, access_key and secret_key" in message
    assert wrong not in message and APP_KEY not in message
    assert v1_sim.counters.unauthorized == 1  # final: not re-sent


@pytest.mark.usefixtures("restore_logging")
def test_check_warns_about_api_1_and_run_reports_an_expired_binding(
    v1_sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(parameters(v1_sim, event_types=["audit"])))
    assert main(["check", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "WARNING: auth_method api_keys_v1" in err and "check passed" in err
    assert SECRET_KEY not in err and APP_KEY not in err
    v1_sim.expire_binding()
    code = main(["run", "--config", str(config), "--state", str(tmp_path / "s.json"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "the API 1.0 binding (access_key and secret_key) has expired" in err


def test_an_api_2_host_is_refused_for_api_1_keys_naming_api_base_url() -> None:
    with pytest.raises(ConfigError) as caught:
        MimecastConnector({**V1_PARAMETERS, "api_base_url": "https://api.services.mimecast.com"}, environ={})
    assert caught.value.parameter == "api_base_url"
