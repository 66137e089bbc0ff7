"""SIEM stream mode: ``GET /siem/v1/events/cg`` with the configured types as one comma list, records inline, a
page token bound to that set of types, and a window that never reaches back past the API's 24 hours.

docs/siem.md, "Stream":

* **Cursor.** ``StreamCursor``: the last committed ``@nextPage`` and when it was received, the set of types it was
  issued for, and the newest record time delivered. Each page's state carries the page's token and follows its
  records (a crash before the commit reads the page again, with the same ``metadata.uid``).
* **Window.** Without a usable token the window is ``[start, now)``: start = the cursor minus ``RESTART_OVERLAP_MS``
  (or now - ``siem_initial_lookback_hours`` on a first run), clamped to now - 24 h + ``EDGE_MS`` (the API refuses
  an older ``dateRangeStartsAt``). A token older than that edge is not used, and a token of another set of types
  (``siem_log_types`` changed) neither: the window restarts from the cursor, and records read again are dropped by
  their keys.
* **Gaps.** What lies between the cursor and the edge can no longer be read: reported in the summary as NOT
  COLLECTED (never a failed run). If the API still refuses the window as too old (``err_validation_date_range``),
  the window moves to the edge once, and that is reported the same way.
* **Budget.** 300 calls per hour (``siem_state.STREAM_BUDGET``), counted in the state as for batch. A page that is
  not caught up but gives the token it was asked with again ends the pass with a ``PaginationError`` (an
  ``ApiError``, as in batch mode), so a server that does not advance cannot spend the hour's budget on one page.
* **Times.** The cursor is the newest record time (``siem_records.key_time``: a ``timestamp`` inside the OCSF
  epoch-ms range and at most ``FUTURE_SLACK_MS`` past the clock, else the collection time), so what the checkpoint
  keeps is always a time its next load accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from connector.api.budget import CallBudget
from connector.errors import ApiError, PaginationError
from connector.streams.base import StreamContext, StreamOutput, iso
from connector.streams.siem_listing import STREAM_PATH, Listed, SiemListing
from connector.streams.siem_records import RecordPath, SiemSummary
from connector.streams.siem_state import STREAM_BUDGET, KeyBuckets, SiemState, StreamCursor

__all__ = ["EDGE_MS", "RESTART_OVERLAP_MS", "STREAM_HISTORY_MS", "StreamModeRun", "StreamSettings", "iso_ms"]

_log = logging.getLogger("connector.streams.siem")

STREAM_HISTORY_MS: Final = 24 * 3600_000
EDGE_MS: Final = 10 * 60_000
"""The window starts this far inside the 24 hours, so that a request at the very edge is not refused (the clocks
of the connector and Mimecast differ, and the request takes time)."""
RESTART_OVERLAP_MS: Final = 5 * 60_000
"""A window restarted from the cursor re-reads this much before it (records of the same millisecond, late ones)."""
TOO_OLD_CODE: Final = "err_validation_date_range"


def iso_ms(ms: int) -> str:
    """Epoch ms as the stream's ISO-8601 form: ``2026-06-15T10:30:45.642Z``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@dataclass(frozen=True)
class StreamSettings:
    """What one stream-mode pass needs of the configuration."""

    types: tuple[str, ...]
    lookback_ms: int
    page_size: int = 100
    max_pages: int = 10000


class StreamModeRun:
    """One stream-mode pass (see the module docstring)."""

    def __init__(self, context: StreamContext, state: SiemState, settings: StreamSettings) -> None:
        self.context = context
        self.state = state
        self.settings = settings
        self.summary = SiemSummary(mode="stream", budget_text="300 calls / hour",
                                   history_text="the 24 hours the SIEM stream serves")  # fmt: skip
        self._budget: CallBudget = STREAM_BUDGET.with_times(state.stream_calls)
        self._keys = {name: KeyBuckets(snapshot) for name, snapshot in state.keys.items()}
        self._snapshots = dict(state.keys)

    def _state(self, path: RecordPath, cursor: StreamCursor) -> SiemState:
        now = self.context.now_ms()
        for name in path.touched:
            self._snapshots[name] = self._keys[name].snapshot(now)
        path.touched.clear()
        return SiemState(
            batch=self.state.batch,
            stream=cursor,
            keys=self._snapshots,
            batch_calls=self.state.batch_calls,
            stream_calls=tuple(self._budget.times()),
        )

    def _start(self, now: int, previous: StreamCursor | None) -> int:
        """The window start without a token, clamped to the edge (the clamp is reported)."""
        edge = now - STREAM_HISTORY_MS + EDGE_MS
        if previous is not None and previous.cursor_ms is not None:
            start = previous.cursor_ms - RESTART_OVERLAP_MS
            if start < edge and previous.cursor_ms > edge:
                start = edge  # only the overlap falls outside: nothing was missed
            elif start < edge:
                self.summary.stream_gap = (previous.cursor_ms, edge)
        else:
            # a first run asks for a look-back, it promises nothing before it: only one longer than the 24 hours
            # the mode keeps is reported (the 10-minute safety edge inside them is not a gap of this connector's)
            start = now - self.settings.lookback_ms
            if start < edge and self.settings.lookback_ms > STREAM_HISTORY_MS:
                self.summary.history_gap = (start, edge)
        # a cursor is at most now + FUTURE_SLACK_MS (``siem_records.key_time``): the window still ends after it starts
        return max(min(start, now - RESTART_OVERLAP_MS), edge)

    def outputs(self) -> Iterator[StreamOutput]:
        """Pages of the configured types until caught up (see the module docstring)."""
        settings = self.settings
        now = self.context.now_ms()
        types = tuple(settings.types)
        previous = self.state.stream
        edge = now - STREAM_HISTORY_MS + EDGE_MS
        token: str | None = None
        if previous is not None and previous.next_page is not None:
            if previous.types != types:
                _log.warning("siem stream types changed: the window restarts from the cursor",
                             extra={"stored": ",".join(previous.types), "now": ",".join(types)})  # fmt: skip
            elif previous.token_ms is None or previous.token_ms < edge:
                _log.warning("siem stream token older than the API's 24 hours: not used",
                             extra={"received": iso(previous.token_ms)})  # fmt: skip
            else:
                token = previous.next_page
        start = None if token is not None else self._start(now, previous)
        cursor_ms = previous.cursor_ms if previous is not None and previous.cursor_ms is not None else start
        self.summary.window = (start if start is not None else cursor_ms or now, now)
        self.summary.cursor_ms = cursor_ms
        path = RecordPath(self.context, self._keys, self.summary, now)
        retried_edge = False
        for _ in range(settings.max_pages):
            if self._budget.left(self.context.now_ms()) == 0:
                self.summary.budget_left = ["all types"]
                self.summary.budget_free_ms = self._budget.free_at(self.context.now_ms())
                return
            params = {"types": ",".join(types), "dateRangeEndsAt": iso_ms(now)}
            if token is None:
                assert start is not None
                params["dateRangeStartsAt"] = iso_ms(start)
            try:
                listed, received = self._list(params, token)
            except ApiError as exc:
                if exc.code != TOO_OLD_CODE or token is not None or retried_edge:
                    raise
                retried_edge = True  # the API's edge is later than ours: move to it once, and say so
                gap_from = start if start is not None else now
                start = self.context.now_ms() - STREAM_HISTORY_MS + 2 * EDGE_MS
                self.summary.stream_gap = (gap_from, start)
                continue
            newest = cursor_ms
            for record in listed.value:
                time_ms = path.take(record, None)
                if time_ms is not None and (newest is None or time_ms > newest):
                    newest = time_ms
                if path.full():
                    yield from path.drain()
            yield from path.drain()
            cursor_ms = newest
            new_token = listed.next_page or token
            state_cursor = StreamCursor(types, new_token, received if new_token is not None else None, cursor_ms)
            yield StreamOutput(None, None, [], self._state(path, state_cursor))
            self.summary.cursor_ms = cursor_ms
            if listed.caught_up or not listed.value:
                return
            if new_token == token:
                raise PaginationError(
                    f"{STREAM_PATH} gave the same page token again without being caught up; the server is not "
                    "advancing",
                    endpoint=STREAM_PATH,
                )
            token = new_token

    def _list(self, params: dict[str, str], token: str | None) -> tuple[Listed, int]:
        listing = SiemListing(STREAM_PATH, params)
        now = self.context.now_ms()
        self._budget = self._budget.spend(now)
        client = self.context.client
        payload = client.request(listing.call(self.settings.page_size, token), listing.interpret)
        client.stats.add(pages=1)
        self.summary.stream_pages += 1
        return listing.listed(payload), now
