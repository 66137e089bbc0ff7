"""A reading of a pass while it runs, for the progress display and the Prometheus metrics.

Both read what the pass keeps anyway (the ``RunSummary`` with its stream sections and the shared ``Report``, and
the client's ``ClientStats``); nothing in the streams counts anything for them.

The section protocol. A stream's section of the run summary (``connector.streams.base.Summary``) may expose any
of these plain attributes; an absent one, or one of another type, reads as ``None`` / 0, so a new stream gets
progress and metrics by declaring the ones that fit it:

========================  =========================  ===========================================================
attribute                 type                       meaning
========================  =========================  ===========================================================
``window``                ``tuple[int, int] | None``  the time window this pass reads, epoch ms ``[start, end)``
``cursor_ms``             ``int | None``             how far the stream has got (window streams: the end of the
                                                     last slice read whole); cursor lag is now minus it
``pages``                 ``int``                    pages read so far
``records``               ``int``                    records read so far (duplicates of the overlap included)
``gaps``                  ``int``                    gaps the stream reported (data it knows it could not read)
========================  =========================  ===========================================================

Thread safety. The snapshot is taken in another thread (the display's refresh thread, the metrics server's
request thread) while the pass runs. Each attribute is read once: reading an int, a tuple (immutable, so a window
is never half-updated) or a reference is atomic in CPython. The dicts are copied in one C call each (``dict()`` of
a dict or ``Counter`` with str keys, ``tuple()`` of ``dict.items()``: no Python code runs during the copy, so the
collector thread cannot change them mid-copy); a ``RuntimeError`` from a dict that changed size is retried. The
figures of one snapshot may therefore be a few records apart from each other, never torn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from connector.api.stats import ClientStats
from connector.collector import RunSummary, StreamCounts

__all__ = ["PassSnapshot", "StreamSnapshot", "take_snapshot"]

_RETRIES: Final = 5


def _int(section: object, name: str) -> int:
    value = getattr(section, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _optional_int(section: object, name: str) -> int | None:
    value = getattr(section, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _window(section: object) -> tuple[int, int] | None:
    value = getattr(section, "window", None)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1])
    return None


@dataclass(frozen=True)
class StreamSnapshot:
    """One stream of the pass, as far as it has got (see the module docstring for where each figure comes from).

    Attributes:
        name: The stream (its ``event_types`` value).
        window: The window it reads, epoch ms, or None.
        cursor_ms: Its cursor, or None.
        pages: Pages read.
        records: Records read.
        gaps: Gaps reported.
        counts: Its share of the report: events per table, refused records per stage, other audit types.
    """

    name: str
    window: tuple[int, int] | None = None
    cursor_ms: int | None = None
    pages: int = 0
    records: int = 0
    gaps: int = 0
    counts: StreamCounts = field(default_factory=StreamCounts)

    @property
    def events(self) -> int:
        """Events emitted (mapped and valid) by this stream so far."""
        return sum(self.counts.emitted.values())

    @property
    def refused(self) -> int:
        """Records this stream refused so far."""
        return sum(self.counts.refused.values())

    def covered(self) -> float | None:
        """The share of the window behind the cursor (0..1), or None for a stream without a window."""
        if self.window is None:
            return None
        start, end = self.window
        if end <= start:
            return 1.0
        if self.cursor_ms is None or self.cursor_ms <= start:
            return 0.0
        return min(1.0, (self.cursor_ms - start) / (end - start))


@dataclass(frozen=True)
class PassSnapshot:
    """The whole pass: its streams in run order, events per table, refusals, and the client's counters.

    ``http`` holds the client's counters since it was created (``ClientStats.as_dict``: they run across the
    passes of one ``--loop``), not this pass's share.
    """

    streams: tuple[StreamSnapshot, ...] = ()
    emitted: Mapping[str, int] = field(default_factory=dict)
    delivered: Mapping[str, int] = field(default_factory=dict)
    refused: Mapping[str, int] = field(default_factory=dict)
    http: Mapping[str, int | float] = field(default_factory=dict)


def _take(summary: RunSummary, stats: ClientStats | None) -> PassSnapshot:
    counts = summary.stream_counts()
    sections = tuple(summary.sections.items())
    streams = tuple(
        StreamSnapshot(
            name=name,
            window=_window(section),
            cursor_ms=_optional_int(section, "cursor_ms"),
            pages=_int(section, "pages"),
            records=_int(section, "records"),
            gaps=_int(section, "gaps"),
            counts=counts.get(name, StreamCounts()),
        )
        for name, section in sections
    )
    report = summary.report
    http: dict[str, Any] = stats.as_dict() if stats is not None else {}
    return PassSnapshot(streams, dict(report.emitted), dict(summary.delivered), dict(report.failed), http)


def take_snapshot(summary: RunSummary, stats: ClientStats | None = None) -> PassSnapshot:
    """Read ``summary`` (and the client's ``stats``) from any thread (see "Thread safety" above)."""
    for _ in range(_RETRIES - 1):
        try:
            return _take(summary, stats)
        except RuntimeError:  # a dict changed size while it was copied: read again
            continue
    return _take(summary, stats)
