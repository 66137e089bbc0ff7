"""What ``run`` adds around its passes, each part optional: the live progress on a terminal
(``connector.progress``), the Prometheus metrics (``connector.metrics``) and the summary JSON
(``connector.summary_json``).

None of them changes a pass: they read the summary, the client's counters and the checkpoints the pass commits
(through a ``CheckpointSaver`` that passes each save on and notes it). A ``RunObserver`` with none of them does
nothing at all, so ``run`` without the flags behaves and prints exactly as before.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

from connector.api.stats import ClientStats
from connector.checkpoint import Checkpoint
from connector.collector import RunSummary
from connector.errors import ConnectorError
from connector.metrics import ConnectorMetrics, MetricsServer
from connector.progress import Progress
from connector.runner import CheckpointSaver
from connector.snapshot import take_snapshot
from connector.summary_json import summary_document, write_summary_json

__all__ = ["PassWatch", "RunObserver"]

_log = logging.getLogger("connector.observe")
EXIT_INTERRUPTED = 130


class Observed(Protocol):
    """What a pass is read from (``MimecastConnector``)."""

    @property
    def summary(self) -> RunSummary: ...


def _stats(connector: Observed) -> ClientStats | None:
    client = getattr(connector, "client", None)
    stats = getattr(client, "stats", None)
    return stats if isinstance(stats, ClientStats) else None


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, ConnectorError):
        return exc.exit_code
    return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1


class _NotingSaver:
    """Passes every save on to the store, then tells the metrics."""

    def __init__(self, store: CheckpointSaver, metrics: ConnectorMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def save(self, checkpoint: Checkpoint) -> None:
        self._store.save(checkpoint)
        self._metrics.committed(checkpoint)


class RunObserver:
    """The progress display, metrics and summary JSON of one ``run`` command (each None when not asked for).

    Args:
        progress_stream: Draw the live progress there (a terminal); None: no progress.
        metrics_address: ``(host, port)`` to serve ``/metrics`` on while the command runs; None: no metrics.
        summary_json: Write the summary JSON there after every pass (and on a failure); None: not written.
        now_ms: Wall clock, epoch ms.
        clock: Monotonic seconds (durations).
    """

    def __init__(
        self,
        *,
        progress_stream: IO[str] | None = None,
        metrics_address: tuple[str, int] | None = None,
        summary_json: str | Path | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress_stream = progress_stream
        self.metrics_address = metrics_address
        self.summary_json = summary_json
        self.metrics = ConnectorMetrics(now_ms) if metrics_address is not None else None
        self.server: MetricsServer | None = None
        self._now_ms = now_ms
        self._clock = clock
        self._recorded: BaseException | None = None
        self._last: tuple[RunSummary, int, float] | None = None  # summary, started at (ms), duration (s)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Serve the metrics (when asked for) until the block ends. ``ConfigError`` when the port is taken."""
        if self.metrics is None or self.metrics_address is None:
            yield
            return
        host, port = self.metrics_address
        with MetricsServer(self.metrics, host=host, port=port) as server:
            self.server = server
            _log.info("metrics served", extra={"host": host, "port": server.port, "path": "/metrics"})
            yield

    @contextlib.contextmanager
    def recording_failures(self) -> Iterator[None]:
        """Around the whole command: an error that ends it outside a pass (bad configuration, a locked state, an
        output that cannot be closed) is written to the summary JSON too, with the last pass's figures if any.
        Ctrl-C between two ``--loop`` passes is no failure of a pass: the last pass's document stays."""
        try:
            yield
        except KeyboardInterrupt as exc:
            if self.summary_json is not None and self._last is None and exc is not self._recorded:
                self._write(None, EXIT_INTERRUPTED, None, None, "interrupted", quiet=True)
            raise
        except BaseException as exc:
            if self.summary_json is not None and exc is not self._recorded:
                summary, started, duration = self._last if self._last is not None else (None, None, None)
                self._write(summary, _exit_code(exc), started, duration, str(exc) or type(exc).__name__, quiet=True)
            raise

    def start(self, connector: Observed, checkpoint: Checkpoint | None, store: CheckpointSaver) -> PassWatch:
        """A pass begins (``connector.collect`` was just called): start what was asked for."""
        return PassWatch(self, connector, checkpoint, store)

    def _write(
        self,
        summary: RunSummary | None,
        exit_code: int,
        started_ms: int | None,
        duration: float | None,
        error: str | None,
        *,
        quiet: bool,
    ) -> None:
        if self.summary_json is None:
            return
        document = summary_document(
            summary, exit_code=exit_code, started_at_ms=started_ms, duration_seconds=duration, error=error
        )
        try:
            write_summary_json(self.summary_json, document)
        except ConnectorError as exc:
            if not quiet:
                raise
            _log.error("summary not written", extra={"error": str(exc)})


class PassWatch:
    """One pass under observation; ``store`` is what the pass must commit through."""

    def __init__(
        self, observer: RunObserver, connector: Observed, checkpoint: Checkpoint | None, store: CheckpointSaver
    ) -> None:
        self._observer = observer
        self._summary = connector.summary
        self._started_ms = observer._now_ms()
        self._started = observer._clock()
        self._display = contextlib.ExitStack()
        self.store: CheckpointSaver = store
        metrics = observer.metrics
        if metrics is not None:
            metrics.begin(self._summary, _stats(connector), checkpoint)
            self.store = _NotingSaver(store, metrics)
        if observer.progress_stream is not None:
            progress = Progress(
                observer.progress_stream,
                lambda: take_snapshot(connector.summary, _stats(connector)),
                clock=observer._clock,
            )
            self._display.enter_context(progress.showing())

    def stop(self) -> None:
        """Take the progress display away (before the summary is printed); idempotent."""
        self._display.close()

    def finished(self, exit_code: int) -> None:
        """The pass ended with ``exit_code``: metrics and the summary JSON.

        Raises:
            SinkError: the summary JSON could not be written and the pass itself succeeded (else it is logged).
        """
        self._end(exit_code, None, quiet=exit_code != 0)

    def failed(self, exc: BaseException) -> None:
        """The pass ended with ``exc`` (which the caller re-raises)."""
        self._observer._recorded = exc
        self._end(_exit_code(exc), str(exc) or type(exc).__name__, quiet=True)

    def _end(self, exit_code: int, error: str | None, *, quiet: bool) -> None:
        self.stop()
        observer = self._observer
        duration = observer._clock() - self._started
        observer._last = (self._summary, self._started_ms, duration)
        if observer.metrics is not None:
            observer.metrics.end(self._summary, exit_code, duration)
        observer._write(self._summary, exit_code, self._started_ms, duration, error, quiet=quiet)
