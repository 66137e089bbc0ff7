"""A host may run ``collect()`` in a worker process: what crosses the process boundary pickles, the secret never
does (issue 10, item 13)."""

from __future__ import annotations

import pickle

import pytest
from helpers_v1 import APP_KEY, SECRET_KEY, V1_PARAMETERS

from connector.checkpoint import Checkpoint
from connector.config import Config
from connector.errors import ConfigError
from connector.events import Batch
from connector.host import MimecastConnector
from connector.secret import NOT_SET, WITHHELD, Secret
from connector.store import CheckpointStore

SECRET = "pickle-me-never-0123456789"
PARAMETERS = {"api_base_url": "https://api.services.mimecast.com", "client_key": "key", "client_secret": SECRET}


def a_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """A checkpoint with seen ids and a membership snapshot, as a real run leaves it."""
    data = Checkpoint().to_dict()
    data["streams"]["audit"] = {"cursor_ms": 1_790_000_000_000, "seen": {"eNqID1": 1_790_000_000_000}}
    return Checkpoint.from_dict(data)


def test_a_checkpoint_pickles_to_an_equal_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> None:
    checkpoint = a_checkpoint(tmp_path_factory)
    copy = pickle.loads(pickle.dumps(checkpoint))
    assert copy == checkpoint
    assert copy.to_dict() == checkpoint.to_dict()


def test_a_batch_pickles_with_its_events_and_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> None:
    events = [{"class_uid": 3002, "metadata": {"uid": "u1"}}]
    batch = Batch("authentication", 3002, events, a_checkpoint(tmp_path_factory))
    assert pickle.loads(pickle.dumps(batch)) == batch


def test_a_config_pickles_without_its_secret() -> None:
    config = Config.from_parameters(PARAMETERS, environ={})
    data = pickle.dumps(config)
    assert SECRET.encode() not in data
    copy = pickle.loads(data)
    assert copy.client_secret.withheld
    assert copy.page_size == config.page_size and copy.api_base_url == config.api_base_url
    assert copy != config
    assert copy.with_secret(SECRET) == config
    assert pickle.loads(pickle.dumps(copy)).client_secret.withheld  # pickles again, still without


def test_a_config_without_its_secret_fails_fast_naming_the_parameter() -> None:
    copy = pickle.loads(pickle.dumps(Config.from_parameters(PARAMETERS, environ={})))
    with pytest.raises(ConfigError) as caught:
        MimecastConnector(copy, environ={})
    assert caught.value.parameter == "client_secret"
    assert "with_secret" in str(caught.value)
    with pytest.raises(ValueError):
        copy.client_secret.reveal()


def test_with_secret_checks_the_secret_as_config_does() -> None:
    config = Config.from_parameters(PARAMETERS, environ={})
    with pytest.raises(ConfigError) as caught:
        config.with_secret("short")
    assert caught.value.parameter == "client_secret"
    assert config.with_secret(Secret(SECRET)) == config


def test_a_secret_itself_still_refuses_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(SECRET))


def test_a_checkpoint_store_state_survives_a_pickled_round_trip(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("state") / "checkpoint.json"
    store = CheckpointStore(path)
    checkpoint = a_checkpoint(tmp_path_factory)
    store.save(pickle.loads(pickle.dumps(checkpoint)))
    assert store.load() == checkpoint


def test_a_config_with_api_v1_keys_pickles_without_them() -> None:
    config = Config.from_parameters(V1_PARAMETERS, environ={})
    data = pickle.dumps(config)
    assert APP_KEY.encode() not in data and SECRET_KEY.encode() not in data
    copy = pickle.loads(data)
    assert copy.app_key.withheld and copy.secret_key.withheld
    assert copy.client_secret is NOT_SET  # not used by api_keys_v1: nothing to withhold, nothing to give back
    assert copy.app_id == config.app_id and copy.access_key == config.access_key
    with pytest.raises(ConfigError) as caught:
        copy.require_secret()
    assert caught.value.parameter == "app_key" and "with_secret(app_key=...)" in str(caught.value)
    half = copy.with_secret(app_key=APP_KEY)
    with pytest.raises(ConfigError) as caught:
        half.require_secret()
    assert caught.value.parameter == "secret_key"
    whole = half.with_secret(secret_key=Secret(SECRET_KEY))
    whole.require_secret()
    assert whole == config
    assert copy.with_secret(app_key=APP_KEY, secret_key=SECRET_KEY) == config


def test_with_secret_refuses_a_secret_the_auth_method_does_not_use() -> None:
    v1 = Config.from_parameters(V1_PARAMETERS, environ={})
    with pytest.raises(ConfigError) as caught:
        v1.with_secret(SECRET)
    assert caught.value.parameter == "client_secret" and "api_keys_v1" in str(caught.value)
    oauth2 = Config.from_parameters(PARAMETERS, environ={})
    with pytest.raises(ConfigError) as caught:
        oauth2.with_secret(secret_key=SECRET_KEY)
    assert caught.value.parameter == "secret_key"
    with pytest.raises(TypeError):
        oauth2.with_secret()


def test_with_secret_checks_the_secret_key_is_base64() -> None:
    copy = pickle.loads(pickle.dumps(Config.from_parameters(V1_PARAMETERS, environ={})))
    with pytest.raises(ConfigError) as caught:
        copy.with_secret(secret_key="this is no base64 at all")
    assert caught.value.parameter == "secret_key" and "this is no" not in str(caught.value)


def test_the_stand_ins_equal_only_themselves_and_pickle_as_themselves() -> None:
    assert NOT_SET != WITHHELD and Secret("") != NOT_SET and Secret("") != WITHHELD
    assert pickle.loads(pickle.dumps(NOT_SET)) is NOT_SET
    assert pickle.loads(pickle.dumps(WITHHELD)) is WITHHELD
    assert not NOT_SET and NOT_SET.reveal() == "" and not NOT_SET.withheld
    assert repr(NOT_SET) == "Secret(not set)"
