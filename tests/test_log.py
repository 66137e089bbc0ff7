"""Tests for connector.log: JSON lines, idempotent set-up, and redaction everywhere a secret can hide."""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.log import (
    _MAX_TRANSIENT,
    MASK,
    MIN_MASKED_LENGTH,
    configure_logging,
    escape_control,
    redact_text,
    register_secret,
    safe_line,
)
from connector.secret import Secret

SECRET = "Cl1ent-S3cret+&="
TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    saved_level, saved_handlers, saved_httpx_level = root.level, list(root.handlers), httpx_logger.level
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer, secrets=[SECRET])
    yield buffer
    # Leave the root logger as the test found it (pytest's own capture handlers included).
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    httpx_logger.setLevel(saved_httpx_level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_lines_are_json_with_standard_fields_and_extras(stream: io.StringIO) -> None:
    logging.getLogger("connector.collector").info("page fetched", extra={"event_type": "audit", "records": 500})
    [line] = lines(stream)
    assert line["level"] == "INFO"
    assert line["name"] == "connector.collector"
    assert line["message"] == "page fetched"
    assert line["event_type"] == "audit"
    assert line["records"] == 500
    assert line["timestamp"].endswith("+00:00")


def test_configure_is_idempotent(stream: io.StringIO) -> None:
    root = logging.getLogger()
    count = len(root.handlers)
    configure_logging("INFO", stream=stream)
    configure_logging("INFO", stream=stream)
    assert len(root.handlers) == count
    logging.getLogger("connector").info("once")
    logging.getLogger("connector").debug("filtered out")
    assert [line["message"] for line in lines(stream)] == ["once"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="TRACE"):
        configure_logging("TRACE", stream=io.StringIO())


def test_secret_masked_in_message_and_args(stream: io.StringIO) -> None:
    logger = logging.getLogger("connector.test")
    logger.warning(f"secret is {SECRET}")
    logger.warning("secret is %s and %r", SECRET, Secret(SECRET))
    logger.warning("named %(value)s", {"value": SECRET})
    output = stream.getvalue()
    assert SECRET not in output
    assert [line["message"] for line in lines(stream)] == [
        f"secret is {MASK}",
        f"secret is {MASK} and Secret('{MASK}')",
        f"named {MASK}",
    ]


def test_secret_masked_in_nested_extra(stream: io.StringIO) -> None:
    logging.getLogger("connector.test").info(
        "request sent",
        extra={
            "request": {
                "headers": {"Authorization": f"Bearer {TOKEN}", "X-Other": "ok"},
                "form": [SECRET, 1],
            },
            "note": f"client_secret={SECRET}&grant_type=client_credentials",
            "client_secret": "anything",
            "wrapped": Secret(SECRET),
        },
    )
    [line] = lines(stream)
    assert SECRET not in stream.getvalue()
    assert TOKEN not in stream.getvalue()
    assert line["request"] == {"headers": {"Authorization": MASK, "X-Other": "ok"}, "form": [MASK, 1]}
    assert line["note"] == f"client_secret={MASK}&grant_type=client_credentials"
    assert line["client_secret"] == MASK
    assert line["wrapped"] == MASK


def test_secret_masked_in_exception_text(stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"token endpoint said client_secret={SECRET} and Bearer {TOKEN}")
    except RuntimeError:
        logging.getLogger("connector.test").exception("token request failed")
    [line] = lines(stream)
    assert SECRET not in stream.getvalue()
    assert TOKEN not in stream.getvalue()
    assert "RuntimeError" in line["exc_info"]
    assert f"Bearer {MASK}" in line["exc_info"]


def test_token_registered_at_run_time_is_masked(stream: io.StringIO) -> None:
    minted = "opaque-access-token-123"
    logging.getLogger("connector.test").info("before %s", minted)
    register_secret(minted)
    logging.getLogger("connector.test").info("after %s", minted)
    first, second = lines(stream)
    assert first["message"] == f"before {minted}"
    assert second["message"] == f"after {MASK}"


def test_records_from_other_libraries_are_redacted(stream: io.StringIO) -> None:
    logging.getLogger("httpx").warning("HTTP Request: POST https://x/oauth/token?access_token=%s", TOKEN)
    assert TOKEN not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {MASK}"),
        (f"bearer {TOKEN}", f"bearer {MASK}"),
        (
            "grant_type=client_credentials&client_secret=abc%2B1&client_id=k",
            f"grant_type=client_credentials&client_secret={MASK}&client_id=k",
        ),
        (
            '{"access_token": "abc.def", "expires_in": 1800}',
            f'{{"access_token": "{MASK}", "expires_in": 1800}}',
        ),
        ("refresh_token: zzz", f"refresh_token: {MASK}"),
        ("Authorization: MC acc-KEY_1/x=:c2lnbmF0dXJl+/9=", f"Authorization: MC {MASK}"),
        ('{"secret_key": "c2VjcmV0", "app_key": "k-1"}', f'{{"secret_key": "{MASK}", "app_key": "{MASK}"}}'),
        ("mc data: the MC realm", "mc data: the MC realm"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_redact_text_patterns(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_empty_secret_is_ignored() -> None:
    register_secret("")
    assert redact_text("plain words") == "plain words"


def test_escape_control_covers_every_control_format_separator_and_surrogate_code_point() -> None:
    # The class in log.py is written out by hand (compiling it from unicodedata would cost every start-up);
    # this checks it against the Unicode database of the running Python.
    missed = [
        hex(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp", "Cs"} and escape_control(chr(code)) == chr(code)
    ]
    assert missed == []


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ('id\n{"level": "ERROR"}', 'id\\x0a{"level": "ERROR"}'),
        ("tab\there\r", "tab\\x09here\\x0d"),
        ("abc\u202edef\u200b", "abc\\u202edef\\u200b"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("tag \U000e0041", "tag \\U000e0041"),
        ("plain text — café ✓", "plain text — café ✓"),
    ],
)
def test_escape_control(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown
    assert escape_control(shown) == shown  # idempotent
    shown.encode("utf-8")  # printable on any UTF-8 stream (a lone surrogate would raise here)


def test_safe_line_masks_registered_secrets_then_escapes() -> None:
    register_secret(SECRET)
    assert safe_line(f"said {SECRET}\x1b[0m") == f"said {MASK}\\x1b[0m"


def test_only_the_newest_transient_tokens_stay_registered() -> None:
    tokens = [f"rotating-token-{n:04d}-abcdef" for n in range(_MAX_TRANSIENT + 5)]
    for token in tokens:
        register_secret(token, transient=True)
    assert redact_text(tokens[-1]) == MASK
    assert redact_text(tokens[-_MAX_TRANSIENT]) == MASK
    assert redact_text(tokens[0]) == tokens[0]  # expired long ago: no longer in the pattern
    register_secret(SECRET)
    register_secret(SECRET, transient=True)  # already permanent: stays permanent
    for n in range(_MAX_TRANSIENT + 1):
        register_secret(f"later-token-{n:04d}-abcdef", transient=True)
    assert redact_text(SECRET) == MASK


@pytest.mark.parametrize("short", ["t", "t1", "abc1234"])
def test_values_too_short_to_mask_safely_are_not_registered(short: str) -> None:
    # Masking "t" would mask every t: the text would still be readable and would give the value away.
    assert len(short) < MIN_MASKED_LENGTH
    register_secret(short)
    assert redact_text(f"the {short} text") == f"the {short} text"


def test_a_pre_signed_link_httpx_logs_at_debug_keeps_its_path_but_not_its_signature(
    stream: io.StringIO, httpx_mock: Any
) -> None:
    # what a SIEM batch listing hands out: an S3 link whose query string is the credential
    link = (
        "https://mimecast-siem.s3.eu-west-2.amazonaws.com/cg/2026/12/01/receipt-0001.json.gz?X-Amz-Algorithm=AWS4-HMAC-"
        "SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261201%2Feu-west-2%2Fs3&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE"
        "&X-Amz-Expires=900&X-Amz-Signature=3f1c0ffee5ca1ab1e0ddba11deadbeef"
    )
    httpx_mock.add_response(url=link, content=b"")
    with httpx.Client() as client:
        client.get(link)
    text = stream.getvalue()
    [line] = [entry for entry in lines(stream) if entry["name"] == "httpx"]
    assert "receipt-0001.json.gz" in line["message"] and "X-Amz-Expires=900" in line["message"]
    for credential in ("3f1c0ffee5ca1ab1e0ddba11deadbeef", "AKIAEXAMPLE", "IQoJb3JpZ2luX2VjEXAMPLE"):
        assert credential not in text
