"""Prometheus metrics of ``run --loop`` (``--metrics-port``): one custom collector that reads, at scrape time, what
the passes keep anyway (``RunSummary``, the client's ``ClientStats``, the last committed checkpoint).

Nothing is incremented along the way: a scrape folds the passes already finished (added up when each ended) with
the figures of the pass running now (``take_snapshot``, safe from the server's thread). Labels are only
``stream`` (an ``event_types`` value), ``table`` (a manifest table) and ``stage`` (``mapping`` / ``validation``):
bounded sets declared by the connector, never a tenant's value (no user, audit type or record id), and no metric
carries a credential: every value is a number.

=====================================================  =======  ==================================================
metric                                                 type     what
=====================================================  =======  ==================================================
``mimecast_connector_events_total{stream,table}``      counter  events emitted (mapped and valid)
``mimecast_connector_events_delivered_total{table}``   counter  events handed to the outputs
``mimecast_connector_records_refused_total``           counter  records refused, ``{stream,stage}``
``mimecast_connector_records_other_type_total``        counter  audit records of types outside the tables, not
                                                                emitted, ``{stream}``
``mimecast_connector_records_read_total{stream}``      counter  records read (section ``records``)
``mimecast_connector_stream_pages_total{stream}``      counter  pages read (section ``pages``)
``mimecast_connector_gaps_total{stream}``              counter  gaps reported (section ``gaps``)
``mimecast_connector_requests_total``                  counter  API requests sent (re-sends included)
``mimecast_connector_pages_total``                     counter  API pages received
``mimecast_connector_retries_total``                   counter  re-sends after 429, 5xx, transport errors
``mimecast_connector_rate_limited_total``              counter  HTTP 429 answers
``mimecast_connector_wait_seconds_total``              counter  seconds waited (rate limits and backoff)
``mimecast_connector_token_refreshes_total``           counter  access tokens fetched
``mimecast_connector_runs_total``                      counter  passes finished
``mimecast_connector_run_in_progress``                 gauge    1 while a pass runs
``mimecast_connector_checkpoint_age_seconds``          gauge    now - ``updated_at`` of the last checkpoint loaded
                                                                or committed
``mimecast_connector_cursor_lag_seconds{stream}``      gauge    now - the stream's cursor (section ``cursor_ms``)
``mimecast_connector_last_run_duration_seconds``       gauge    duration of the last finished pass
``mimecast_connector_last_run_exit_code``              gauge    its exit code (as ``run`` would exit)
``mimecast_connector_last_run_timestamp_seconds``      gauge    when it ended (epoch seconds)
=====================================================  =======  ==================================================
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connector.api.stats import ClientStats
from connector.checkpoint import Checkpoint
from connector.collector import RunSummary
from connector.errors import ConfigError
from connector.snapshot import PassSnapshot, take_snapshot

__all__ = ["PREFIX", "ConnectorMetrics", "MetricsServer"]

PREFIX: Final = "mimecast_connector_"

_HTTP: Final = (  # ClientStats.as_dict key -> metric name, help
    ("requests", "requests", "API requests sent, re-sends included (token requests are token_refreshes)."),
    ("pages", "pages", "API pages received."),
    ("retries", "retries", "Re-sends after a 429, a 5xx, a transport error or a retryable fail[]."),
    ("rate_limited", "rate_limited", "HTTP 429 answers received."),
    ("slept_seconds", "wait_seconds", "Seconds waited on rate limits and backoff."),
    ("token_refreshes", "token_refreshes", "Access tokens fetched."),
)


@dataclass
class _Totals:
    """What the finished passes added up to."""

    events: Counter[tuple[str, str]]
    delivered: Counter[str]
    refused: Counter[tuple[str, str]]
    other: Counter[str]
    records: Counter[str]
    pages: Counter[str]
    gaps: Counter[str]

    @classmethod
    def empty(cls) -> _Totals:
        return cls(Counter(), Counter(), Counter(), Counter(), Counter(), Counter(), Counter())

    def plus(self, snapshot: PassSnapshot) -> _Totals:
        """These totals with one pass's figures added (a new object: the originals stay as they are)."""
        out = _Totals(*(Counter(c) for c in vars(self).values()))
        out.delivered.update(snapshot.delivered)
        for stream in snapshot.streams:
            for table, count in stream.counts.emitted.items():
                out.events[(stream.name, table)] += count
            for stage, count in stream.counts.refused.items():
                out.refused[(stream.name, stage)] += count
            out.other[stream.name] += stream.counts.other_types
            out.records[stream.name] += stream.records
            out.pages[stream.name] += stream.pages
            out.gaps[stream.name] += stream.gaps
        return out


class ConnectorMetrics(Collector):
    """The metrics of one ``run`` command: told when each pass begins, commits and ends; read at scrape time.

    Args:
        now_ms: Wall clock, epoch ms (checkpoint age, cursor lag).
    """

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._totals = _Totals.empty()
        self._current: RunSummary | None = None
        self._last: RunSummary | None = None
        self._stats: ClientStats | None = None
        self._checkpoint_ms: int | None = None
        self._runs = 0
        self._last_run: tuple[float, int, float] | None = None  # duration, exit code, end (epoch s)

    def begin(self, summary: RunSummary, stats: ClientStats | None, checkpoint: Checkpoint | None) -> None:
        """A pass starts: ``summary`` fills in as it runs; ``checkpoint`` is the one it starts from."""
        with self._lock:
            self._current = summary
            self._stats = stats if stats is not None else self._stats
            if checkpoint is not None and checkpoint.updated_at_ms is not None:
                self._checkpoint_ms = checkpoint.updated_at_ms

    def committed(self, checkpoint: Checkpoint) -> None:
        """A checkpoint was committed."""
        if checkpoint.updated_at_ms is not None:
            self._checkpoint_ms = checkpoint.updated_at_ms  # one reference: atomic

    def end(self, summary: RunSummary, exit_code: int, duration_seconds: float) -> None:
        """The pass of ``summary`` ended with ``exit_code``: its figures join the totals."""
        snapshot = take_snapshot(summary)
        with self._lock:
            self._totals = self._totals.plus(snapshot)
            self._current = None
            self._last = summary
            self._runs += 1
            self._last_run = (duration_seconds, exit_code, self._now_ms() / 1000)

    def collect(self) -> Iterator[Metric]:
        """The metric families now (called by the registry on every scrape, in the server's thread)."""
        with self._lock:
            totals, current, last, stats = self._totals, self._current, self._last, self._stats
            runs, last_run, checkpoint_ms = self._runs, self._last_run, self._checkpoint_ms
        if current is not None:
            snapshot = take_snapshot(current)
            totals = totals.plus(snapshot)
        else:
            snapshot = take_snapshot(last) if last is not None else PassSnapshot()
        yield from _per_pass(totals)
        http = stats.as_dict() if stats is not None else {}
        for key, name, text in _HTTP:
            family = CounterMetricFamily(PREFIX + name, text)
            family.add_metric([], float(http.get(key, 0)))
            yield family
        yield _counter("runs", "Passes finished.", [], {(): runs})
        yield _gauge("run_in_progress", "1 while a pass runs, else 0.", value=1.0 if current is not None else 0.0)
        now = self._now_ms()
        if checkpoint_ms is not None:
            age = max(0.0, (now - checkpoint_ms) / 1000)
            yield _gauge("checkpoint_age_seconds", "Seconds since the last checkpoint loaded or committed.", value=age)
        lag = GaugeMetricFamily(
            PREFIX + "cursor_lag_seconds", "Seconds between now and the stream's cursor.", labels=["stream"]
        )
        for stream in snapshot.streams:
            if stream.cursor_ms is not None:
                lag.add_metric([stream.name], max(0.0, (now - stream.cursor_ms) / 1000))
        yield lag
        if last_run is not None:
            duration, code, ended = last_run
            yield _gauge("last_run_duration_seconds", "Duration of the last finished pass.", value=duration)
            yield _gauge("last_run_exit_code", "Exit code of the last finished pass.", value=float(code))
            yield _gauge("last_run_timestamp_seconds", "When the last pass ended, epoch seconds.", value=ended)


def _counter(name: str, text: str, labels: list[str], values: Mapping[Any, int]) -> CounterMetricFamily:
    """A counter family; ``values`` is keyed by the label value, or a tuple of them (``()`` for none)."""
    family = CounterMetricFamily(PREFIX + name, text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric([str(k) for k in key] if isinstance(key, tuple) else [str(key)], float(value))
    return family


def _gauge(name: str, text: str, *, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, text, value=value)


def _per_pass(totals: _Totals) -> Iterator[Metric]:
    yield _counter("events", "Events emitted (mapped and valid).", ["stream", "table"], totals.events)
    yield _counter("events_delivered", "Events handed to the outputs.", ["table"], totals.delivered)
    yield _counter("records_refused", "Records refused by mapping or validation.", ["stream", "stage"], totals.refused)
    yield _counter(
        "records_other_type", "Audit records of types outside the tables, not emitted.", ["stream"], totals.other
    )
    yield _counter("records_read", "Records read (overlap re-reads included).", ["stream"], totals.records)
    yield _counter("stream_pages", "Pages read by the stream.", ["stream"], totals.pages)
    yield _counter("gaps", "Gaps the stream reported.", ["stream"], totals.gaps)


class MetricsServer:
    """``/metrics`` over HTTP (prometheus_client's server in a daemon thread) for one ``ConnectorMetrics``.

    Raises:
        ConfigError: the address cannot be bound (port in use, no such interface), naming ``--metrics-port``.
    """

    def __init__(self, metrics: ConnectorMetrics, *, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(metrics)
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})",
                parameter="--metrics-port",
            ) from None
        self._server: WSGIServer = server
        self._thread = thread
        self.port: int = server.server_address[1]

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
