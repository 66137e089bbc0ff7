"""Structured JSON logging with secret redaction.

Every log line is one JSON object: ``timestamp`` (UTC, ISO 8601), ``level``, ``name``, ``message`` plus the
fields passed in ``extra``. Messages are constant phrases (``"page fetched"``) and the data goes in ``extra``
(``extra={"event_type": "audit", "records": 500}``), so lines can be filtered without parsing text.

A ``RedactionFilter`` on the handler masks, wherever they appear (message, ``%`` arguments, ``extra`` values
at any depth, exception and stack text):

- every registered secret value (the client secret at start-up; every access token, registered by the auth the
  moment it is minted; the newest ``_MAX_TRANSIENT`` tokens are kept, older ones have long expired);
- ``Bearer <token>``, and an API 1.0 ``MC <access key>:<signature>`` credential;
- the value after ``client_secret``, ``access_token``, ``refresh_token``, ``app_key`` or ``secret_key`` in
  ``key=value``, ``key: value`` and JSON ``"key": "value"`` form;
- values of ``extra`` keys that name a credential (``authorization``, ``client_secret``, ``access_token``...).

Redaction is a safety net, not a licence: code must still never log token requests or responses.

Lines meant for a person (the run summary, the CLI's ``error:`` line, ``validate`` output) go through
``safe_line``: the same redaction, then every control, format (bidi, zero-width), line-separator and lone-surrogate
character escaped as ``\\xNN`` / ``\\uNNNN``. Record ids, audit types and server messages come from the tenant or
the server; printed raw, an ANSI escape would repaint the terminal and a newline would forge a JSON log line on the
same stream. JSON log lines need no such step: the formatter escapes every non-ASCII and control character.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO, Any

import httpx
from pythonjsonlogger.json import JsonFormatter

from connector.secret import Secret

__all__ = [
    "MASK",
    "MIN_MASKED_LENGTH",
    "RedactionFilter",
    "configure_logging",
    "escape_control",
    "log_stream",
    "redact_text",
    "redact_value",
    "register_secret",
    "safe_line",
]

MASK = "**********"
"""What a redacted value is replaced with (the same mask ``Secret`` uses)."""

_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")
# Mimecast's API 1.0 realm is upper-case "MC"; matched case-sensitively so the word "mc" in prose is left alone.
# The signature is replayable on the same path for as long as Mimecast accepts its date.
_MC_SIGNATURE = re.compile(r"\b(MC)(\s+)[A-Za-z0-9\-._~+/=]+:[A-Za-z0-9+/]+=*")
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>\b(?:client_secret|access_token|refresh_token|app_key|secret_key)\b)"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>[^\s&\"',;}\]]+)"
)
_SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "app_key",
        "authorization",
        "client_secret",
        "password",
        "proxy-authorization",
        "refresh_token",
        "secret",
        "secret_key",
        "token",
    }
)
# LogRecord attributes that are not ``extra`` fields (the formatter treats the rest as extras).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# Characters never printed raw in a line meant for a person: C0 and C1 controls and DEL (Cc), format characters
# such as bidi overrides and zero-width spaces (Cf), the line and paragraph separators (Zl, Zp), and lone
# surrogates (Cs: a str may hold them, and printing one to a UTF-8 stream raises). tests/test_log.py checks this
# class against unicodedata for every code point.
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    r"\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
# Access tokens are registered as they are minted (one every ~30 minutes, for as long as the process runs); only
# the newest are kept, so the pattern every log line is matched against stays small.
_MAX_TRANSIENT = 16
# Shorter values are not registered: masking them would mask ordinary words too, and where the mask shows up
# would give the value away. The client secret is refused below 16 characters at config time (manifest
# ``min_length``); real access tokens are far longer than this.
MIN_MASKED_LENGTH = 8

_lock = threading.Lock()
_secrets: set[str] = set()
_transient: deque[str] = deque()
_secret_pattern: re.Pattern[str] | None = None
_handler: logging.Handler | None = None


def register_secret(value: str | Secret, *, transient: bool = False) -> None:
    """Mask ``value`` in every log line and every ``safe_line`` from now on.

    Call it for each credential the moment it exists: the client secret at start-up, every access token
    when it is minted. Values shorter than ``MIN_MASKED_LENGTH`` are ignored (see there).

    Args:
        value: The secret, plain or wrapped.
        transient: A value that expires (an access token): only the newest ``_MAX_TRANSIENT`` transient values
            stay registered. A value registered as permanent stays so.
    """
    global _secret_pattern
    plain = value.reveal() if isinstance(value, Secret) else value
    if len(plain) < MIN_MASKED_LENGTH:
        return
    with _lock:
        if plain in _secrets:
            return
        _secrets.add(plain)
        if transient:
            _transient.append(plain)
            if len(_transient) > _MAX_TRANSIENT:
                _secrets.discard(_transient.popleft())
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_control(text: str) -> str:
    """``text`` with every control, format, separator and lone-surrogate character written as an escape.

    Linear in ``len(text)``; idempotent (what it writes is printable ASCII), so escaping twice changes nothing.
    """
    return _UNPRINTABLE.sub(_escape_char, text)


def safe_line(text: object) -> str:
    """``text`` made fit for a terminal or a log stream shared with JSON lines: secrets masked
    (``redact_text``), then control characters escaped (``escape_control``). Use it for every line printed for a
    person: summaries, ``error:`` lines, validation output."""
    return escape_control(redact_text(str(text)))


def redact_text(text: str) -> str:
    """Mask registered secrets, bearer tokens and credential ``key=value`` pairs in ``text``."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _MC_SIGNATURE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)


def redact_value(value: object) -> object:
    """Redact a log field recursively: strings, dict values, list and tuple items.

    Numbers, booleans and ``None`` pass through; a ``Secret`` becomes the mask; any other object becomes its
    redacted ``str`` (it would be stringified by the JSON formatter anyway). Values under credential-named
    keys (``authorization``, ``client_secret``, ...) are masked whole.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and key.lower() in _SENSITIVE_KEYS else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


# Query parameters that carry a credential: a pre-signed link's signature (S3's X-Amz-Signature / -Credential /
# -Security-Token, Azure's sig, GCS's X-Goog-Signature), or a token a server put in a URL. httpx logs each
# request's full URL at DEBUG; a signed link must not reach a log file whole.
_SIGNED_QUERY = re.compile(r"signature|credential|security-token|token|^sig$|key", re.IGNORECASE)


def _redact_url(url: httpx.URL) -> httpx.URL:
    """``url`` with the values of its credential-carrying query parameters masked."""
    if not url.query:
        return url
    params = [(name, MASK if _SIGNED_QUERY.search(name) else value) for name, value in url.params.multi_items()]
    return url.copy_with(params=params)


class RedactionFilter(logging.Filter):
    """Masks secrets in a record before any formatter sees it; attached to the handler, so it covers every
    logger that propagates to it (httpx's included). It never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place with secrets masked; always keep it."""
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(_redact_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        if isinstance(record.msg, dict):
            record.msg = redact_value(record.msg)
        else:
            try:
                # Format first, then redact: covers secrets split between the template and its arguments.
                message = record.getMessage()
            except Exception:  # a bad %-template: redact the parts, let logging report the error
                record.msg = redact_text(str(record.msg))
                record.args = _redact_args(record.args)
            else:
                record.msg = redact_text(message)
                record.args = None
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRS:
                continue
            setattr(record, key, MASK if key.lower() in _SENSITIVE_KEYS else redact_value(value))
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact_text(text)
            record.exc_info = None  # formatters would re-render the unredacted exception from exc_info
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def _redact_args(args: Any) -> Any:
    if isinstance(args, dict):
        return redact_value(args)
    if isinstance(args, tuple):
        return tuple(redact_value(arg) for arg in args)
    return args


def configure_logging(level: str = "INFO", stream: IO[str] | None = None, secrets: Iterable[str] = ()) -> None:
    """Send JSON log lines to ``stream`` from the root logger, with redaction.

    Idempotent: calling it again replaces the handler installed by the previous call (never duplicates it),
    so the CLI, tests and hosts can all call it safely. Handlers installed by others are left alone.

    Args:
        level: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR`` (the ``log_level`` parameter).
        stream: Where the lines go; the current ``sys.stderr`` by default (looked up at call time, so a
            redirected or captured stderr is honoured), keeping stdout free for event output.
        secrets: Values to mask from the start, typically ``config.client_secret.reveal()``.

    Raises:
        ValueError: ``level`` is not a logging level name.
    """
    global _handler
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; expected DEBUG, INFO, WARNING or ERROR")
    for secret in secrets:
        register_secret(secret)

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level"},
            timestamp=True,
        )
    )
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        _handler = handler
        root.addHandler(handler)
    root.setLevel(numeric)
    # httpx logs every request at INFO; keep that for DEBUG runs only.
    logging.getLogger("httpx").setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)


@contextlib.contextmanager
def log_stream(stream: IO[str] | io.TextIOBase) -> Iterator[None]:
    """Send the JSON log lines of ``configure_logging``'s handler to ``stream`` until the block ends, then back to
    where they went (the progress display prints them above itself). Without that handler, nothing changes."""
    with _lock:
        handler = _handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous = handler.setStream(stream)
    try:
        yield
    finally:
        if previous is not None:  # None: it already wrote to ``stream``
            handler.setStream(previous)
