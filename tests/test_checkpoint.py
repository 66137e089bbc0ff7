"""Tests for connector.checkpoint: round trip, strict parsing, atomic and crash-safe saves, no secrets."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO, Any

import pytest

from connector.checkpoint import (
    CHECKPOINT_VERSION,
    AuditState,
    Checkpoint,
    GroupMembership,
    InventoryState,
    RawState,
)
from connector.config import Config
from connector.errors import CheckpointError, StateLockedError
from connector.store import CheckpointStore, StateLock
from connector.streams.audit import AUDIT
from connector.streams.directory import DIRECTORY


def sample() -> Checkpoint:
    return Checkpoint.of(
        audit=AuditState(cursor_ms=1_700_000_000_000, seen={"id-b": 1_700_000_000_500, "id-a": 1_699_999_999_000}),
        user_management=InventoryState(
            collected_at_ms=1_700_000_100_000,
            memberships={
                "g2": GroupMembership(name="Admins", members=("B@Example.com", "a@example.com", "b@example.com")),
                "g1": GroupMembership(name="Empty"),
            },
        ),
        updated_at_ms=1_700_000_200_000,
    )


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_defaults_are_a_first_run_checkpoint() -> None:
    checkpoint = Checkpoint()
    assert checkpoint.version == CHECKPOINT_VERSION == 2
    assert checkpoint.to_dict() == {"version": 2, "updated_at_ms": None, "streams": {}}
    assert checkpoint.state(AUDIT) == AuditState(cursor_ms=None, seen={})
    assert checkpoint.state(DIRECTORY) == InventoryState(collected_at_ms=None, memberships=None)
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint


def test_membership_is_compact_and_case_insensitive() -> None:
    membership = GroupMembership(name="Admins", members=("B@Example.com", "a@example.com", "b@example.com"))
    assert membership.members == ("a@example.com", "b@example.com")


def test_state_is_read_only() -> None:
    checkpoint = sample()
    with pytest.raises(TypeError):
        checkpoint.streams["audit"].seen["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        checkpoint.streams["audit"].cursor_ms = 5  # type: ignore[misc]


def test_dict_round_trip() -> None:
    checkpoint = sample()
    data = checkpoint.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Checkpoint.from_dict(data) == checkpoint
    assert data["streams"]["user_management"]["memberships"]["g2"] == {
        "name": "Admins",
        "members": ["a@example.com", "b@example.com"],
    }


def test_file_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "state" / "checkpoint.json")
    assert store.load() is None
    store.save(sample())
    assert store.load() == sample()
    assert CheckpointStore(tmp_path / "state" / "checkpoint.json").load() == sample()


def test_save_replaces_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    store = CheckpointStore(path)
    store.save(Checkpoint())
    store.save(sample())
    assert files_in(tmp_path) == ["checkpoint.json"]
    assert store.load() == sample()


def test_save_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    CheckpointStore(first).save(sample())
    CheckpointStore(second).save(Checkpoint.from_dict(json.loads(first.read_text())))
    assert first.read_bytes() == second.read_bytes()


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    CheckpointStore(path).save(Checkpoint())
    before = path.read_bytes()

    def crash_halfway(stream: IO[bytes], data: bytes) -> None:
        stream.write(data[: len(data) // 2])
        raise KeyboardInterrupt  # the process being stopped mid-write

    with pytest.raises(KeyboardInterrupt):
        CheckpointStore(path, writer=crash_halfway).save(sample())
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["checkpoint.json"]
    assert CheckpointStore(path).load() == Checkpoint()


def test_failed_rename_keeps_the_previous_checkpoint_and_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    CheckpointStore(path).save(Checkpoint())
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError) as info:
        CheckpointStore(path, replace=refuse).save(sample())
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert "previous checkpoint is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["checkpoint.json"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "not JSON"),
        (b'{"version": 1, "audit": ', "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "must be an object"),
        (b'{"version": 1}', "missing keys"),
        (b'{"version": 2}', "missing keys"),
        (b'{"version": 2, "updated_at_ms": null, "streams": []}', "streams must be an object"),
    ],
)
def test_corrupt_file_names_the_file_and_is_left_untouched(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(content)
    store = CheckpointStore(path)
    with pytest.raises(CheckpointError) as info:
        store.load()
    message = str(info.value)
    assert info.value.path == str(path)
    assert str(path) in message
    assert detail in message
    assert "Move it away to start over" in message
    assert "will not overwrite" in message
    assert path.read_bytes() == content
    with pytest.raises(CheckpointError, match="not overwriting"):
        store.save(sample())
    assert path.read_bytes() == content


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    data = {**sample().to_dict(), "version": 3}
    path.write_text(json.dumps(data), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(CheckpointError) as info:
        CheckpointStore(path).load()
    assert "version 3 is not supported" in str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_check_writable_creates_the_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "new" / "deeper" / "checkpoint.json")
    store.check_writable()
    assert files_in(tmp_path / "new" / "deeper") == []


@pytest.mark.parametrize("where", ["under-a-file", "a-folder"])
def test_check_writable_refuses_a_state_that_cannot_be_saved(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    if where == "under-a-file":
        blocker.write_text("")
        path = blocker / "checkpoint.json"
    else:
        blocker.mkdir()
        path = blocker
    with pytest.raises(CheckpointError, match=r"the checkpoint could not be written \(.+\); nothing was collected"):
        CheckpointStore(path).check_writable()


def test_a_second_state_lock_is_refused_naming_the_holder_s_pid_until_the_first_is_released(tmp_path: Path) -> None:
    """flock locks belong to the open file, so two StateLock objects in one process conflict like two processes."""
    path = tmp_path / "state" / "checkpoint.json"
    first = StateLock(path)
    first.acquire()
    assert (tmp_path / "state" / "checkpoint.json.lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(StateLockedError) as caught:
        StateLock(path).acquire()
    assert caught.value.holder_pid == os.getpid() and caught.value.exit_code == 8
    assert isinstance(caught.value, CheckpointError) and caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: another collector (pid {os.getpid()}) is running on this checkpoint")

    first.release()
    first.release()  # a second release does nothing
    with StateLock(path) as second:
        assert "held=True" in repr(second)
    assert "held=False" in repr(second)


def test_a_lock_held_before_its_pid_is_written_says_so(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    with StateLock(path):
        (tmp_path / "checkpoint.json.lock").write_text("")  # the holder has locked but not written its pid yet
        with pytest.raises(StateLockedError, match=r"just starting \(pid not written yet\)") as caught:
            StateLock(path).acquire()
        assert caught.value.holder_pid is None


def test_the_store_lock_checks_that_the_checkpoint_can_be_written_first(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with (
        pytest.raises(CheckpointError, match="the checkpoint could not be written"),
        CheckpointStore(blocker / "checkpoint.json").lock(),
    ):
        pass  # pragma: no cover


def mutated(path: list[Any], value: object) -> dict[str, Any]:
    data = sample().to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (mutated(["streams", "audit", "cursor_ms"], "1700000000000"), "streams.audit.cursor_ms"),
        (mutated(["streams", "audit", "cursor_ms"], -1), "streams.audit.cursor_ms"),
        (mutated(["streams", "audit", "cursor_ms"], True), "streams.audit.cursor_ms"),
        (
            mutated(["streams", "audit", "cursor_ms"], 10**17),
            "streams.audit.cursor_ms must be an integer from 0 to 253402300799999",
        ),
        (mutated(["streams", "audit", "seen", "id-a"], 10**17), "streams.audit.seen['id-a']"),
        (mutated(["streams", "user_management", "collected_at_ms"], 10**17), "streams.user_management.collected_at_ms"),
        (mutated(["updated_at_ms"], 2**63), "updated_at_ms"),
        (mutated(["streams", "audit", "seen"], []), "streams.audit.seen"),
        (mutated(["streams", "audit", "seen", "id-a"], 1.5), "streams.audit.seen['id-a']"),
        (mutated(["streams", "audit", "extra"], 1), "unexpected keys"),
        (mutated(["streams", "user_management", "memberships"], []), "streams.user_management.memberships"),
        (mutated(["streams", "user_management", "memberships", "g1", "members"], "a@example.com"), "members"),
        (mutated(["streams", "user_management", "memberships", "g1", "name"], None), "name"),
        (mutated(["updated_at_ms"], "yesterday"), "updated_at_ms"),
    ],
)
def test_from_dict_is_strict(data: dict[str, Any], detail: str) -> None:
    with pytest.raises(CheckpointError) as info:
        Checkpoint.from_dict(data)
    assert "host checkpoint" in str(info.value)
    assert detail in str(info.value)
    assert info.value.path is None


def test_from_dict_names_the_given_source() -> None:
    with pytest.raises(CheckpointError, match=r"^state\.json: checkpoint is corrupt"):
        Checkpoint.from_dict({"version": 1}, source="state.json")


def test_checkpoint_never_contains_the_secret(tmp_path: Path) -> None:
    secret = "very-secret-value-42"
    config = Config.from_parameters({"client_key": "client-id", "client_secret": secret}, environ={})
    path = tmp_path / "checkpoint.json"
    # A run's state derives only from records; even ids that look like credentials are just ids.
    checkpoint = Checkpoint.of(
        audit=AuditState(cursor_ms=1, seen={"id-1": 1}),
        user_management=InventoryState(collected_at_ms=2, memberships={"g": GroupMembership("G", ("a@example.com",))}),
        updated_at_ms=3,
    )
    CheckpointStore(path).save(checkpoint)
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert config.client_key not in text
    assert set(json.loads(text)) == {"version", "updated_at_ms", "streams"}
    assert set(json.loads(text)["streams"]) == {"audit", "user_management"}


# -- version 1 and streams this connector does not know ----------------------------------------------------

V1 = {
    "version": 1,
    "updated_at_ms": 1_700_000_200_000,
    "audit": {"cursor_ms": 1_700_000_000_000, "seen": {"id-a": 1_699_999_999_000, "id-b": 1_700_000_000_500}},
    "inventory": {
        "collected_at_ms": 1_700_000_100_000,
        "memberships": {"g1": {"name": "Empty", "members": []}, "g2": {"name": "Admins", "members": ["a@x.io"]}},
    },
}


def test_a_version_1_checkpoint_is_migrated_with_every_slice_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(V1), encoding="utf-8")
    store = CheckpointStore(path)
    loaded = store.load()
    assert loaded is not None and loaded.version == 2
    assert loaded.to_dict() == {
        "version": 2,
        "updated_at_ms": V1["updated_at_ms"],
        "streams": {"audit": V1["audit"], "user_management": V1["inventory"]},
    }
    store.save(loaded)  # a migrated checkpoint is no unreadable file: it may be replaced
    assert json.loads(path.read_text())["version"] == 2
    assert store.load() == loaded


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"audit": {"cursor_ms": -1, "seen": {}}}, "corrupt (audit.cursor_ms must be an integer"),
        ({"inventory": {"collected_at_ms": None}}, "inventory is missing keys ['memberships']"),
        ({"streams": {}}, "checkpoint has unexpected keys ['streams']"),
        ({"version": True}, "checkpoint version True is not supported"),
        ({"version": 1.0}, "checkpoint version 1.0 is not supported"),
    ],
)
def test_a_version_1_checkpoint_is_still_read_strictly(change: dict[str, Any], detail: str) -> None:
    with pytest.raises(CheckpointError, match=re.escape(detail)):
        Checkpoint.from_dict({**V1, **change})


def test_the_state_of_an_unknown_stream_is_kept_and_written_back_unchanged(tmp_path: Path) -> None:
    future = {"cursor": {"receipt": "token-1", "process": None}, "keys": [1, 2.5, "x", True]}
    data = {**sample().to_dict()}
    data["streams"] = {**data["streams"], "widgets": future}
    loaded = Checkpoint.from_dict(data)
    assert isinstance(loaded.streams["widgets"], RawState)
    assert loaded.state(AUDIT) == sample().streams["audit"]
    advanced = loaded.with_state("audit", AuditState(cursor_ms=1_800_000_000_000), 1_800_000_000_000)
    assert advanced.to_dict()["streams"]["widgets"] == future
    store = CheckpointStore(tmp_path / "checkpoint.json")
    store.save(advanced)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["streams"]["widgets"] == future


def test_a_stream_state_that_is_no_json_data_is_refused() -> None:
    with pytest.raises(CheckpointError, match=r"streams\.widgets is not JSON data"):
        Checkpoint.from_dict({"version": 2, "updated_at_ms": None, "streams": {"widgets": {1.5j}}})
