"""``run --summary-json FILE``: the run summary as JSON, for hosts and schedulers that should not parse the human one.

The document carries the figures of the human summary (``RunSummary.to_dict``: per stream sections with their
events per table and refused records, events delivered and mapped per table, refused records with the first ones
named, warnings, failures, HTTP figures) plus what only the command knows: its exit code, when the pass started
and how long it took, and the error that ended it, if one did. With ``--loop`` it is rewritten after every pass
(the last pass wins). It is also written when the command fails before a pass could start (bad configuration, a
corrupt checkpoint, the state locked by another run): then only ``exit_code`` and ``error`` say something. Ctrl-C
between two ``--loop`` passes leaves the last pass's document as it is.

The file is replaced atomically (a temporary file in the same folder, fsynced, renamed over it), so a scheduler
reading it never sees half a document. Secrets are masked as in the human summary, and the text is ASCII JSON
(every control or non-ASCII character escaped), so it is safe to print.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from connector.collector import RunSummary
from connector.durability import fsync_directory
from connector.errors import ConfigError, SinkError
from connector.log import redact_text, redact_value
from connector.timefmt import ms_to_datetime

__all__ = ["SUMMARY_VERSION", "check_writable", "summary_document", "write_summary_json"]

SUMMARY_VERSION: Final = 1
"""Layout version of the document: a change that removes or renames a field increments it."""

_ARGUMENT = "--summary-json"


def _iso(ms: int) -> str:
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def summary_document(
    summary: RunSummary | None,
    *,
    exit_code: int,
    started_at_ms: int | None,
    duration_seconds: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """The JSON document of one pass (``summary`` None: the command failed before a pass started)."""
    document: dict[str, Any] = {"version": SUMMARY_VERSION}
    if summary is not None:
        document.update(summary.to_dict())
    document["exit_code"] = exit_code
    document["started_at"] = _iso(started_at_ms) if started_at_ms is not None else None
    document["duration_seconds"] = round(duration_seconds, 3) if duration_seconds is not None else None
    document["error"] = redact_text(error) if error is not None else None
    masked = redact_value(document)
    assert isinstance(masked, dict)
    return masked


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail before a pass pulls anything when the file could not be written (its folder is missing or read-only,
    or the path is a folder), as ``--state`` is checked.

    Raises:
        ConfigError: naming ``--summary-json``.
    """
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{_ARGUMENT} {target} is a folder, not a file", parameter=_ARGUMENT)
    folder = target.parent
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{_ARGUMENT} {target}: cannot write in {folder} ({exc.strerror or exc})", parameter=_ARGUMENT
        ) from None


def write_summary_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``document`` (ASCII JSON, one object, a final newline).

    Raises:
        SinkError: the file could not be written (the previous one, if any, is left as it was).
    """
    target = Path(path)
    data = (json.dumps(document, ensure_ascii=True, indent=2) + "\n").encode("ascii")
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
        temporary = None
        fsync_directory(target.parent)
    except OSError as exc:
        raise SinkError(
            f"{_ARGUMENT} {target}: cannot write the summary ({exc.strerror or exc})", path=str(target), errno=exc.errno
        ) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
