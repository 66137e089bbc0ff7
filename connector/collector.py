"""One collection pass: run each selected stream from its state and hand out batches with the checkpoint to commit.

The collector knows streams only through their descriptors (``connector.streams``): it gives each its slice of
the checkpoint, turns what the stream yields into ``Batch`` es whose checkpoint replaces that slice (every other
stream's, known or not, is carried over), counts what the consumer took, and keeps going when one stream fails
(``summary.failures``). A batch's checkpoint covers its events and every batch before it: the host commits it
after durably accepting the batch, so a crash before the commit re-delivers (with the same ``metadata.uid``) and
never skips.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.api.client import MimecastClient
from connector.checkpoint import Checkpoint
from connector.config import Config
from connector.errors import ConnectorError
from connector.events import Batch
from connector.log import redact_value, safe_line
from connector.pipeline import Report, Transformer
from connector.streams.base import Stream, StreamContext, Summary

__all__ = ["Collector", "RunSummary", "StreamCounts", "section_dict"]

_log = logging.getLogger("connector.collector")
_SHOWN_ERRORS = 20  # refused records named in the summary (the human one and its JSON form)


@dataclass(frozen=True)
class StreamCounts:
    """The shared report's counters as they stood when a stream started (a mark), or one stream's share of them.

    Streams run one after the other in the consumer's thread (read-ahead threads fetch, they never map), so a
    stream's share is the difference between its mark and the next stream's (or the report now).
    """

    emitted: Mapping[str, int] = field(default_factory=dict)
    refused: Mapping[str, int] = field(default_factory=dict)
    other_types: int = 0

    @classmethod
    def of(cls, report: Report) -> StreamCounts:
        """The report's counters now (copies: ``dict`` of a ``Counter`` with str keys is one C call)."""
        return cls(dict(report.emitted), dict(report.failed), sum(report.other_types.values()))

    def minus(self, earlier: StreamCounts) -> StreamCounts:
        """What was counted between ``earlier`` and this."""
        return StreamCounts(
            {k: v - earlier.emitted.get(k, 0) for k, v in self.emitted.items() if v - earlier.emitted.get(k, 0)},
            {k: v - earlier.refused.get(k, 0) for k, v in self.refused.items() if v - earlier.refused.get(k, 0)},
            self.other_types - earlier.other_types,
        )


def section_dict(section: Summary) -> dict[str, Any]:
    """A stream's section as JSON-ready data: its ``to_dict()`` when it has one, else its human ``lines()``."""
    to_dict = getattr(section, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, dict):
            return data
    return {"lines": [line.strip() for line in section.lines()]}


@dataclass
class RunSummary:
    """What one pass did, for the human summary and the host: one section per stream, then the shared counts."""

    report: Report = field(default_factory=Report)
    sections: dict[str, Summary] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    http: dict[str, int | float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Events per table the consumer took: counted when it asks for the next batch (or the end), so events mapped
    # into a batch that was never handed out (a listing failed first) are not reported as delivered.
    delivered: Counter[str] = field(default_factory=Counter)
    # The report's counters when each stream started, in run order (``stream_counts``).
    marks: dict[str, StreamCounts] = field(default_factory=dict)

    def stream_counts(self) -> dict[str, StreamCounts]:
        """Events per table, refused records per stage and records of other audit types, per stream, so far."""
        names = list(self.marks)
        if not names:
            return {}
        ends = [self.marks[name] for name in names[1:]] + [StreamCounts.of(self.report)]
        return {name: end.minus(self.marks[name]) for name, end in zip(names, ends, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """The figures of ``lines()`` as JSON-ready data (``--summary-json``), secrets masked (``redact_value``).

        Each stream's section comes from its ``to_dict()`` (or its ``lines()``), with that stream's events per
        table and refused records per stage added. Tenant text (record ids, audit types, server messages) is kept
        as values, never as keys.
        """
        counts = self.stream_counts()
        streams: dict[str, Any] = {}
        for name, section in self.sections.items():
            share = counts.get(name, StreamCounts())
            streams[name] = {**section_dict(section), "events": dict(share.emitted), "refused": dict(share.refused)}
        report = self.report
        data = {
            "ok": self.ok,
            "warnings": list(self.warnings),
            "streams": streams,
            "tables": {
                table: {"delivered": self.delivered.get(table, 0), "mapped": report.emitted.get(table, 0)}
                for table in sorted(set(report.emitted) | set(self.delivered))
            },
            "other_audit_types": [{"audit_type": t, "count": n} for t, n in report.other_types.most_common()],
            "refused": {
                "total": report.failures,
                "by_stage": dict(sorted(report.failed.items())),
                "first": [
                    {"record_id": e.record_id, "stage": e.stage, "message": e.message}
                    for e in report.errors[:_SHOWN_ERRORS]
                ],
            },
            "raw_data_omitted": report.raw_data_omitted,
            "http": dict(self.http),
            "failures": [{"stream": name, "error": message} for name, message in self.failures.items()],
            "exit_code": self.exit_code,
        }
        masked = redact_value(data)
        assert isinstance(masked, dict)
        return masked

    @property
    def ok(self) -> bool:
        """True when no stream failed and no record was refused."""
        return not self.failures and not self.report.failures

    def lines(self) -> list[str]:
        """The human summary printed on stderr, every line through ``safe_line`` (secrets masked, control
        characters escaped)."""
        out = ["run summary:"]
        out.extend(f"  WARNING: {warning}" for warning in self.warnings)
        for section in self.sections.values():
            out.extend(section.lines())
        out.extend(self.report.summary_lines(self.delivered))
        if self.http:
            h = self.http
            out.append(f"  http: {h.get('requests', 0)} requests, {h.get('pages', 0)} pages, "
                       f"{h.get('retries', 0)} retries, {h.get('rate_limited', 0)} x 429, "
                       f"{h.get('slept_seconds', 0)} s slept, {h.get('token_refreshes', 0)} tokens")  # fmt: skip
        for event_type, message in self.failures.items():
            out.append(f"  FAILED {event_type}: {message}")
        # Record ids, audit types and server messages are the tenant's and the server's text: masked and escaped.
        return [safe_line(line) for line in out]


class Collector:
    """Runs one pass of the selected streams and yields ``Batch`` es.

    Args:
        client: the Mimecast API client (shared by all streams).
        transformer: map + validate + report.
        streams: the streams to run, in order (``connector.streams.registry.selected``).
        config: the configuration each stream reads its settings from.
        now_ms: wall clock in epoch ms (inject in tests).
    """

    def __init__(
        self,
        client: MimecastClient,
        transformer: Transformer,
        *,
        streams: Iterable[Stream],
        config: Config,
        now_ms: Callable[[], int],
    ) -> None:
        self.client = client
        self.transformer = transformer
        self.streams = tuple(streams)
        self.config = config
        self.now_ms = now_ms
        self.summary = RunSummary(report=transformer.report)
        self._checkpoint = Checkpoint()

    def collect(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        """One pass. A failing stream is recorded in ``summary.failures`` and the others still run."""
        self._checkpoint = checkpoint or Checkpoint()
        # The client (and its counters) lives as long as the host's connector: report this pass's share only.
        http_before = self.client.stats.as_dict()
        context = StreamContext(self.client, self.transformer, self.now_ms, self.config, self.summary.warnings)
        try:
            for stream in self.streams:
                try:
                    yield from self._run(stream, context)
                except ConnectorError as exc:
                    self.summary.failures[stream.name] = str(exc)
                    self.summary.exit_code = max(self.summary.exit_code, exc.exit_code)
                    _log.error("collection failed", extra={"event_type": stream.name, "error": str(exc)})
        finally:
            self.summary.http = _stats_delta(http_before, self.client.stats.as_dict())

    def _run(self, stream: Stream, context: StreamContext) -> Iterator[Batch]:
        self.summary.marks[stream.name] = StreamCounts.of(self.summary.report)
        run = stream.start(context, self._checkpoint.state(stream))
        self.summary.sections[stream.name] = run.summary
        for output in run.outputs():
            checkpoint = None
            if output.state is not None:
                checkpoint = self._checkpoint = self._checkpoint.with_state(stream.name, output.state, self.now_ms())
            batch = Batch(output.table, output.class_uid, output.events, checkpoint)
            yield batch
            # The consumer asked for more: it has stored (or written) this batch.
            if batch.table is not None and batch.events:
                self.summary.delivered[batch.table] += len(batch.events)


def _stats_delta(before: Mapping[str, int | float], after: Mapping[str, int | float]) -> dict[str, int | float]:
    """``after - before`` per counter (floats rounded like ``ClientStats.as_dict``)."""
    delta: dict[str, int | float] = {}
    for key, value in after.items():
        change = value - before.get(key, 0)
        delta[key] = round(change, 3) if isinstance(change, float) else change
    return delta
