"""SIEM batch mode: list the files of each log type from its ``@nextPage`` token, download them a few at a time,
hand out their records in listing order, and commit the token only once every file of its page is delivered.

``GET /siem/v1/batch/events/cg?type=<one type>`` (docs/siem.md, "Batch"):

* **Cursor.** The token is kept per type (``BatchCursor``), sent back as ``nextPage``, and never dropped: when a
  type is caught up the last token stays (a lost token re-lists seven days). Without one, the first listing asks
  from ``dateRangeStartsAt`` = the day of now - ``siem_initial_lookback_hours``, clamped to the seven days the API
  keeps (what lies before is reported as NOT COLLECTED).
* **Commit.** The records of a listing page's files are handed out without a state; the state that carries the
  page's ``@nextPage`` follows the last of them. A crash before it is committed lists the same page again: the
  records come again with the same ``metadata.uid``.
* **Several files at once.** ``DOWNLOAD_CONCURRENCY`` downloads run ahead of the file being read (each spooled,
  not parsed, so memory stays per file); records are read one file at a time in listing order.
* **Expired and missing links.** 403 and 404 abandon the downloads in flight and list the same page again from the
  committed token (fresh links); files of the page already delivered are not downloaded again (known by host and
  path), and a file partly read before is deduplicated by its keys. A link that fails ``MAX_RELISTS`` listings in a
  row, or a file whose content is refused (a bomb, an endless line, not gzip), is a **gap**: in the summary with
  its type, listing time and size, counted, logged. The page is then complete and its token committed.
* **Budget.** The listing's own budget (50 calls / 15 minutes, ``siem_state.BATCH_BUDGET``) is counted in the
  state; a type the budget does not reach this pass is named in the summary and goes on at the next one. The least
  recently listed type goes first, so no type starves. 429s go through the client's app-wide gate as usual.
* **Failures.** Another error of one type (a file host failing on every retry, a listing refused) stops that type
  with its committed cursor and the keys of what was delivered (the same page is listed again next time, nothing
  is skipped); the other types still run, then the first error is raised for the summary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Final

from connector.api.budget import CallBudget
from connector.api.download import DownloadPolicy, FileFetcher, FileRefusedError, LinkGoneError, read_ndjson
from connector.errors import ApiError, ConnectorError, PermissionDeniedError
from connector.streams.base import StreamContext, StreamOutput, iso
from connector.streams.siem_listing import BATCH_PATH, BatchFile, Listed, SiemListing, batch_files
from connector.streams.siem_records import Gap, RecordPath, SiemSummary
from connector.streams.siem_state import BATCH_BUDGET, BatchCursor, KeyBuckets, KeysSnapshot, SiemState
from connector.timefmt import ms_to_datetime

__all__ = ["BATCH_HISTORY_MS", "DOWNLOAD_CONCURRENCY", "MAX_RELISTS", "BatchRun", "BatchSettings"]

_log = logging.getLogger("connector.streams.siem")

DAY_MS: Final = 24 * 3600_000
BATCH_HISTORY_MS: Final = 7 * DAY_MS
MAX_RELISTS: Final = 3
"""Listings of the same page a failing link gets before its file is reported as a gap."""
DOWNLOAD_CONCURRENCY: Final = 4
"""Files downloaded at once. A batch file is one S3 GET, bound by latency (100-500 ms), and the file host is not
Mimecast's API (its quota is not spent); reading and mapping one file of a few thousand records takes about as long
on one core. Four in flight hide the latency behind the mapping on the two cores a connector usually gets, while
at most five spooled files (1 MB each in memory, the rest on disk) wait for the reader."""
MAX_LISTING_PAGE: Final = 100


@dataclass(frozen=True)
class BatchSettings:
    """What one batch pass needs of the configuration.

    Attributes:
        types: The log types to collect, in the configured order.
        lookback_ms: How far back a type without a token starts (clamped to ``BATCH_HISTORY_MS``).
        page_size: Files per listing page (1-100).
        max_pages: Most listing pages of one type per pass.
        concurrency: Downloads at once.
        fetcher: Builds the file fetcher of one pass (tests inject one with a transport and a sleep).
    """

    types: tuple[str, ...]
    lookback_ms: int
    page_size: int = MAX_LISTING_PAGE
    max_pages: int = 10000
    concurrency: int = DOWNLOAD_CONCURRENCY
    fetcher: Callable[[], FileFetcher] = lambda: FileFetcher(policy=DownloadPolicy())


class _Abandon(Exception):
    """A link answered 403/404: the page is listed again."""

    def __init__(self, file: BatchFile, error: LinkGoneError) -> None:
        super().__init__(str(error))
        self.file = file
        self.error = error


class BatchRun:
    """One batch pass over the configured types.

    Args:
        context: Client, transformer, clock.
        state: The stored state.
        settings: Types, lookback, sizes.
    """

    def __init__(self, context: StreamContext, state: SiemState, settings: BatchSettings) -> None:
        self.context = context
        self.state = state
        self.settings = settings
        self.summary = SiemSummary(mode="batch", budget_text="50 calls / 15 min", history_text="the 7 days of SIEM "
                                   "batch files Mimecast keeps")  # fmt: skip
        self._cursors: dict[str, BatchCursor] = dict(state.batch)
        self._budget: CallBudget = BATCH_BUDGET.with_times(state.batch_calls)
        self._keys: dict[str, KeyBuckets] = {}
        self._snapshots: dict[str, KeysSnapshot] = dict(state.keys)
        self._start_day = ""
        self._note_cursor()

    def _note_cursor(self) -> None:
        """The summary's ``cursor_ms``: the oldest listing time among the configured types with a token."""
        times = [c.listed_at_ms for t in self.settings.types if (c := self._cursors.get(t)) is not None
                 and c.next_page is not None and c.listed_at_ms is not None]  # fmt: skip
        self.summary.cursor_ms = min(times, default=None)

    # -- state ---------------------------------------------------------------------------------------------

    def _keys_of(self, log_type: str) -> KeyBuckets:
        keys = self._keys.get(log_type)
        if keys is None:
            keys = self._keys[log_type] = KeyBuckets(self._snapshots.get(log_type))
        return keys

    def _state(self, path: RecordPath) -> SiemState:
        """The state covering everything handed out so far (keys re-snapshotted only for the types touched)."""
        now = self.context.now_ms()
        for log_type in path.touched:
            self._snapshots[log_type] = self._keys[log_type].snapshot(now)
        path.touched.clear()
        self._note_cursor()
        return SiemState(
            batch=self._cursors,
            stream=self.state.stream,
            keys=self._snapshots,
            batch_calls=tuple(self._budget.times()),
            stream_calls=self.state.stream_calls,
        )

    # -- the pass ------------------------------------------------------------------------------------------

    def outputs(self) -> Iterator[StreamOutput]:
        """Every configured type in turn (least recently listed first); see the module docstring."""
        now = self.context.now_ms()
        settings = self.settings
        start = now - settings.lookback_ms
        floor = now - BATCH_HISTORY_MS
        if start < floor and any(self._cursors.get(t, BatchCursor()).next_page is None for t in settings.types):
            self.summary.history_gap = (start, floor)
            _log.warning("siem history gap", extra={"from": iso(start), "to": iso(floor)})
            start = floor
        self._start_day = ms_to_datetime(max(start, floor)).strftime("%Y-%m-%d")
        rank = {t: i for i, t in enumerate(settings.types)}
        order = sorted(settings.types, key=lambda t: (self._cursors.get(t, BatchCursor()).listed_at_ms or -1, rank[t]))
        keys = {t: self._keys_of(t) for t in order}
        path = RecordPath(self.context, keys, self.summary, now)
        first_error: ConnectorError | None = None
        with settings.fetcher() as fetcher, ThreadPoolExecutor(settings.concurrency, "siem-files") as pool:
            for log_type in order:
                if self._budget.left(self.context.now_ms()) == 0:
                    self._out_of_budget(log_type)
                    continue
                try:
                    yield from self._type(log_type, path, fetcher, pool)
                except PermissionDeniedError:
                    raise
                except ConnectorError as exc:
                    _log.error("siem type failed", extra={"log_type": log_type, "error": str(exc)})
                    yield from path.drain()
                    yield StreamOutput(None, None, [], self._state(path))  # what was delivered stays delivered
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def _out_of_budget(self, log_type: str) -> None:
        summary = self.summary
        if log_type not in summary.budget_left:
            summary.budget_left.append(log_type)
        summary.budget_free_ms = self._budget.free_at(self.context.now_ms())

    def _list(self, log_type: str, token: str | None) -> tuple[Listed, int]:
        """One listing call (spent from the budget whatever comes of it) and its time."""
        params = {"type": log_type} if token is not None else {"type": log_type, "dateRangeStartsAt": self._start_day}
        listing = SiemListing(BATCH_PATH, params)
        now = self.context.now_ms()
        self._budget = self._budget.spend(now)
        client = self.context.client
        payload = client.request(listing.call(self.settings.page_size, token), listing.interpret)
        client.stats.add(pages=1)
        self.summary.of(log_type).pages += 1
        return listing.listed(payload), now

    def _type(
        self, log_type: str, path: RecordPath, fetcher: FileFetcher, pool: ThreadPoolExecutor
    ) -> Iterator[StreamOutput]:
        cursor = self._cursors.get(log_type, BatchCursor())
        token = cursor.next_page
        for _ in range(self.settings.max_pages):
            if self._budget.left(self.context.now_ms()) == 0:
                self._out_of_budget(log_type)
                return
            listed, listed_ms = self._list(log_type, token)
            complete, listed, listed_ms = yield from self._page(log_type, token, listed, listed_ms, path, fetcher, pool)
            yield from path.drain()
            if not complete:  # out of budget before the page was complete: its token is not committed
                self._cursors[log_type] = BatchCursor(token, listed_ms, False)
                yield StreamOutput(None, None, [], self._state(path))
                self._out_of_budget(log_type)
                return
            new_token = listed.next_page or token  # never dropped, caught up or not
            self._cursors[log_type] = BatchCursor(new_token, listed_ms, listed.caught_up)
            yield StreamOutput(None, None, [], self._state(path))
            if listed.caught_up:
                self.summary.caught_up.append(log_type)
                return
            if new_token == token:
                if not listed.value:
                    return  # nothing more and no new position: done for now
                raise ApiError(
                    f"{BATCH_PATH} gave the same page token again for type {log_type}; the server is not advancing",
                    endpoint=BATCH_PATH,
                )
            token = new_token
        _log.info("siem page cap reached", extra={"log_type": log_type, "pages": self.settings.max_pages})

    def _page(
        self,
        log_type: str,
        token: str | None,
        listed: Listed,
        listed_ms: int,
        path: RecordPath,
        fetcher: FileFetcher,
        pool: ThreadPoolExecutor,
    ) -> Generator[StreamOutput, None, tuple[bool, Listed, int]]:
        """Deliver every file of one listing page, listing it again for expired or missing links.

        Returns (through ``yield from``): whether the page is complete, and its last listing and listing time.
        """
        done: set[str] = set()
        failures: Counter[str] = Counter()
        while True:
            files = [f for f in batch_files(listed) if f.name not in done]
            try:
                yield from self._files(log_type, files, listed_ms, done, path, fetcher, pool)
                return True, listed, listed_ms
            except _Abandon as abandon:
                name = abandon.file.name
                failures[name] += 1
                _log.warning("siem link refused, listing the page again",
                             extra={"log_type": log_type, "file": name, "status": abandon.error.status_code,
                                    "attempt": failures[name]})  # fmt: skip
                if failures[name] >= MAX_RELISTS:
                    self._gap(log_type, listed_ms, abandon.file, f"{abandon.error} on {failures[name]} listings")
                    done.add(name)
                    if all(f.name in done for f in batch_files(listed)):
                        return True, listed, listed_ms
            if self._budget.left(self.context.now_ms()) == 0:
                return False, listed, listed_ms
            self.summary.of(log_type).relists += 1
            listed, listed_ms = self._list(log_type, token)

    def _gap(self, log_type: str, listed_ms: int, file: BatchFile, reason: str) -> None:
        gap = Gap(log_type, listed_ms, file.size, file.name, reason)
        self.summary.gap_list.append(gap)
        _log.error("siem file not collected (gap)", extra={"log_type": log_type, "file": file.name,
                   "size": file.size, "listed": iso(listed_ms), "reason": reason})  # fmt: skip

    def _files(
        self,
        log_type: str,
        files: list[BatchFile],
        listed_ms: int,
        done: set[str],
        path: RecordPath,
        fetcher: FileFetcher,
        pool: ThreadPoolExecutor,
    ) -> Iterator[StreamOutput]:
        """Download ``files`` ahead (a bounded pool), read them in order; raises ``_Abandon`` on a 403/404."""
        cancel = threading.Event()
        waiting: deque[tuple[BatchFile, Future[IO[bytes]]]] = deque()
        queue = iter(files)

        def submit() -> None:
            file = next(queue, None)
            if file is not None:
                waiting.append((file, pool.submit(fetcher.fetch, file.url, cancel)))

        for _ in range(self.settings.concurrency):
            submit()
        counts = self.summary.of(log_type)
        try:
            while waiting:
                file, future = waiting.popleft()
                try:
                    spool = future.result()
                except LinkGoneError as gone:
                    raise _Abandon(file, gone) from None
                except FileRefusedError as refused:
                    self._gap(log_type, listed_ms, file, str(refused))
                    done.add(file.name)
                    submit()
                    continue
                submit()
                with spool:
                    try:
                        for record in read_ndjson(spool, file.name, fetcher.limits):
                            path.take(record, log_type)
                            if path.full():
                                yield from path.drain()
                    except FileRefusedError as refused:
                        self._gap(log_type, listed_ms, file, f"{refused} (the records before it were delivered)")
                done.add(file.name)
                counts.files += 1
                path.keys[log_type].settle(self.context.now_ms())
        finally:
            cancel.set()
            for _, future in waiting:
                if not future.cancel():
                    with contextlib.suppress(Exception):  # an abandoned download's own error is of no use
                        future.result().close()
