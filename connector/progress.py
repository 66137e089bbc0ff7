"""Live progress of ``run`` on a terminal (rich): per stream the window covered so far, pages, records, events and
rate; then events per table, refusals, requests, 429s and the time waited for them.

Shown only when the standard error is a terminal (and not with ``--no-progress``, nor when the events themselves
go to a standard output that is the same terminal): otherwise nothing is started and the output is byte for byte
what it is without this module. The display is refreshed from ``take_snapshot`` a few times a second by rich's
own thread; it is transient, so when the pass ends it disappears and the usual summary is printed in its place.

While it is shown, the JSON log lines (also on the standard error) are printed above it through the same console,
verbatim (``Console.out``: no markup, no highlighting, no wrapping), so a line is never torn by a redraw; the log
formatter has already escaped every control character in them.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Final

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from connector.log import escape_control, log_stream
from connector.snapshot import PassSnapshot
from connector.streams.base import iso

__all__ = ["REFRESH_PER_SECOND", "Progress", "render", "wanted"]

REFRESH_PER_SECOND: Final = 4

_log = logging.getLogger("connector.progress")


def wanted(stderr: IO[str], *, disabled: bool, events_to_stdout: bool, stdout: IO[str]) -> bool:
    """Whether to show progress: stderr is a terminal, ``--no-progress`` was not given, and the events do not go
    to a standard output that is a terminal too (the display would be torn by the events)."""
    if disabled or not _isatty(stderr):
        return False
    return not (events_to_stdout and _isatty(stdout))


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def _number(value: float) -> str:
    return f"{value:,.0f}"


def render(snapshot: PassSnapshot, baseline: Mapping[str, int | float], elapsed: float) -> RenderableType:
    """The display for one snapshot. ``baseline`` is the client's counters when the pass started (they run across
    passes), ``elapsed`` the pass's seconds so far (for the rate)."""
    streams = Table.grid(padding=(0, 1))
    for _ in range(6):
        streams.add_column()
    for stream in snapshot.streams:
        covered = stream.covered()
        if covered is None:
            bar: RenderableType = Text("")
            span = Text("")
        else:
            bar = ProgressBar(total=100, completed=round(covered * 100), width=24)
            start, end = stream.window or (0, 0)
            span = Text(f"{covered:4.0%} of {iso(start)} -> {iso(end)}")
        rate = stream.records / elapsed if elapsed > 0 else 0.0
        figures = f"{_number(stream.pages)} pages, {_number(stream.records)} records, {_number(stream.events)} events"
        if stream.refused:
            figures += f", {_number(stream.refused)} refused"
        if stream.gaps:
            figures += f", {stream.gaps} gaps"
        streams.add_row(Text(stream.name, style="bold"), bar, span, Text(figures), Text(f"{rate:,.0f} records/s"))
    tables = ", ".join(f"{escape_control(table)} {_number(count)}" for table, count in sorted(snapshot.emitted.items()))
    refused = sum(snapshot.refused.values())
    events = Text(f"events: {tables or 'none yet'}" + (f"; refused {_number(refused)}" if refused else ""))
    h = {key: value - baseline.get(key, 0) for key, value in snapshot.http.items()}
    http = Text(
        f"http: {_number(h.get('requests', 0))} requests, {_number(h.get('pages', 0))} pages, "
        f"{_number(h.get('retries', 0))} retries, {_number(h.get('rate_limited', 0))} x 429, "
        f"waited {h.get('slept_seconds', 0):.1f} s, {_number(h.get('token_refreshes', 0))} tokens"
    )
    return Group(streams, events, http)


class _ConsoleLines(io.TextIOBase):
    """A text stream that prints each whole line through ``console.out`` (above a live display)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._console.out(line, highlight=False)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._console.out(line, highlight=False)


class Progress:
    """The live display of one ``run`` command, shown during each pass (``showing``).

    Args:
        stream: Where it draws (the standard error, a terminal).
        snapshot: Reads the pass now (``take_snapshot`` of the current summary and the client's stats).
        clock: Monotonic seconds (for the rate).
    """

    def __init__(
        self, stream: IO[str], snapshot: Callable[[], PassSnapshot], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console = Console(file=stream, highlight=False, markup=False, emoji=False)
        self._snapshot = snapshot
        self._clock = clock
        self._started = clock()
        self._baseline: Mapping[str, int | float] = {}
        self._failed = False

    def _render(self) -> RenderableType:
        # rich's refresh thread calls this; a display that fails must not end the collection it shows
        try:
            return render(self._snapshot(), self._baseline, self._clock() - self._started)
        except Exception as exc:
            if not self._failed:
                self._failed = True
                _log.warning("progress display failed", extra={"error": repr(exc)})
            return Text("progress unavailable (see the log)")

    @contextmanager
    def showing(self) -> Iterator[None]:
        """Show the display (and print the log lines above it) until the block ends; then it disappears."""
        self._started = self._clock()
        try:
            self._baseline = dict(self._snapshot().http)
        except Exception:
            self._baseline = {}
        live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,  # the events may go there
            redirect_stderr=True,
        )
        with live, log_stream(_ConsoleLines(self.console)):
            yield
