"""Making a newly created or renamed file's directory entry durable (the file's own data needs ``os.fsync``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["fsync_directory"]


def fsync_directory(directory: Path) -> None:
    """fsync ``directory`` so a file created or renamed in it survives a crash; best effort.

    Platforms that cannot open a directory (Windows) skip it, and a failing directory fsync is ignored: the files'
    own fsyncs, which the callers check, are what carry the data.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
