"""`mimecast-connector simulate` refuses bad arguments with a usage error, never a traceback."""

from __future__ import annotations

import socket

import pytest

from connector.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "99999"],
        ["--port", "-1"],
        ["--host", "8.8.8.8"],
        ["--host", "0.0.0.0"],  # would publish the fixed demo credentials on every interface
        ["--host", "example.org"],
        ["--future-days", "nan"],
        ["--future-days", "inf"],
        ["--token-ttl", "0"],
        ["--quota", "0"],
        ["--latency", "-1"],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error:" in err


def test_a_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
