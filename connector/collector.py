"""One collection pass: pull, map, validate, and hand out batches with the checkpoint to commit after each.

Audit (see docs/mimecast-api.md, "Index lag" and "Ordering"):

* The window runs from the checkpoint cursor minus the overlap (or now minus the initial lookback) to now,
  clamped to Mimecast's ~60-day history with a warning for what cannot be collected.
* A cursor after now (the host's clock went back, or the checkpoint was edited or damaged) would give empty
  windows every run until the clock caught up. It is treated as no cursor at all, loudly (a log warning and a
  summary line): the window starts at now minus the initial lookback, as on a first run, and the ids in
  ``audit.seen`` still skip what was delivered. Such a cursor says nothing about what was read in terms of the
  current clock, so "cursor minus the overlap" could skip; the lookback is the operator's own bound for "nothing
  is known", and re-delivering keeps the same ``metadata.uid``. The directory's ``collected_at_ms`` after now
  is handled the same way: the directory is pulled now instead of being "not due" until the clock catches up.
* Long windows are read in slices. Results are not assumed to be ordered, so the cursor moves only when a whole
  slice has been read: to its end, the point before which every visible record was delivered. Records that
  become visible late are caught by re-reading the overlap on the next run.
* Every audit id delivered is remembered with its event time in the checkpoint (``audit.seen``) and skipped when
  seen again; ids older than ``cursor - overlap`` can never be read again and are pruned, so the set stays
  bounded by the overlap plus one slice.
* Each page becomes one batch per table. Only the last batch of a page carries a checkpoint, and it covers
  exactly the records of that page and before: the host commits it after durably accepting the batch, so a crash
  before the commit re-delivers (with the same ``metadata.uid``) and never skips.

Inventory: groups → members (bounded concurrency) → users with their groups → User Inventory Info; the
membership snapshot is diffed against the previous one (Group Management Add/Remove User) and stored in the
checkpoint with the last batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from connector.api.client import MimecastClient
from connector.checkpoint import AuditState, Checkpoint, GroupMembership, InventoryState
from connector.errors import ConnectorError
from connector.events import Batch, MappedEvent
from connector.log import safe_line
from connector.mapping.snapshot import diff_memberships
from connector.pipeline import Report, Transformer
from connector.timefmt import ms_to_datetime, parse_mimecast_time_ms

__all__ = ["HISTORY_MS", "SLICE_MS", "AuditSettings", "Batch", "Collector", "RunSummary"]

_log = logging.getLogger("connector.collector")

MINUTE_MS: Final = 60_000
# Mimecast serves about 60 days of audit history; start 10 minutes inside it so a request at the very edge is
# not refused (which would fail every run of a long catch-up on its first slice).
HISTORY_MS: Final = 60 * 24 * 60 * MINUTE_MS - 10 * MINUTE_MS
SLICE_MS: Final = 6 * 60 * MINUTE_MS  # catch-up windows are read in 6-hour slices
USER_BATCH: Final = 1000
GROUP_SOURCES: Final = ("cloud", "ldap")


@dataclass(frozen=True)
class AuditSettings:
    """The audit-window parameters, in milliseconds."""

    lookback_ms: int
    overlap_ms: int
    lag_warning_ms: int
    categories: tuple[str, ...] = ()


@dataclass
class RunSummary:
    """What one pass did, for the human summary and the host."""

    report: Report = field(default_factory=Report)
    audit_window: tuple[int, int] | None = None
    audit_cursor_ms: int | None = None
    audit_records: int = 0
    duplicates: int = 0
    pages: int = 0
    max_late_ms: int = 0
    lag_warnings: int = 0
    history_gap: tuple[int, int] | None = None
    inventory_users: int = 0
    inventory_groups: int = 0
    membership_changes: int = 0
    inventory_skipped_until_ms: int | None = None
    failures: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    http: dict[str, int | float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Events per table the consumer took: counted when it asks for the next batch (or the end), so events mapped
    # into a batch that was never handed out (a listing failed first) are not reported as delivered.
    delivered: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when no event type failed and no record was refused."""
        return not self.failures and not self.report.failures

    def lines(self) -> list[str]:
        """The human summary printed on stderr, every line through ``safe_line`` (secrets masked, control
        characters escaped)."""
        fmt = _iso
        out = ["run summary:"]
        out.extend(f"  WARNING: {warning}" for warning in self.warnings)
        if self.audit_window:
            out.append(f"  audit window {fmt(self.audit_window[0])} -> {fmt(self.audit_window[1])}, "
                       f"{self.pages} pages, {self.audit_records} records read, "
                       f"{self.duplicates} already delivered (overlap re-read)")  # fmt: skip
            out.append(f"  audit cursor: {fmt(self.audit_cursor_ms) if self.audit_cursor_ms else 'not set'}")
            if self.max_late_ms:
                out.append(f"  latest-indexed record appeared {self.max_late_ms / 60000:.1f} min after the previous "
                           f"cursor had passed it ({self.lag_warnings} lag warnings)")  # fmt: skip
        if self.history_gap:
            out.append(f"  NOT COLLECTED (older than Mimecast's 60-day history): {fmt(self.history_gap[0])} -> "
                       f"{fmt(self.history_gap[1])}")  # fmt: skip
        if self.inventory_skipped_until_ms:
            out.append(f"  directory: not due until {fmt(self.inventory_skipped_until_ms)}")
        elif self.inventory_groups or self.inventory_users:
            out.append(f"  directory: {self.inventory_users} users, {self.inventory_groups} groups, "
                       f"{self.membership_changes} membership changes")  # fmt: skip
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


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    try:
        return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:  # a host may hand over a Checkpoint object it built itself, unchecked
        return f"{ms} ms (not a date)"


def _whole_second(ms: int) -> int:
    """``ms`` rounded down to a whole second: what ``startDateTime`` actually asks for (it has no fraction)."""
    return ms - ms % 1000


def _event_time(record: Mapping[str, Any], fallback: int) -> int:
    text = record.get("eventTime")
    if isinstance(text, str):
        try:
            return parse_mimecast_time_ms(text)
        except ValueError:
            pass
    return fallback


class Collector:
    """Runs one pass for the configured event types and yields ``Batch`` es.

    Args:
        client: the Mimecast API client (shared by all event types).
        transformer: map + validate + report.
        event_types: subset of ``("audit", "user_management")``.
        audit: audit-window settings.
        inventory_interval_ms: minimum time between two directory pulls.
        concurrency: parallel group-member reads.
        now_ms: wall clock in epoch ms (inject in tests).
    """

    def __init__(
        self,
        client: MimecastClient,
        transformer: Transformer,
        *,
        event_types: Iterable[str],
        audit: AuditSettings,
        inventory_interval_ms: int,
        concurrency: int,
        now_ms: Callable[[], int],
    ) -> None:
        self.client = client
        self.transformer = transformer
        self.event_types = tuple(event_types)
        self.audit = audit
        self.inventory_interval_ms = inventory_interval_ms
        self.concurrency = concurrency
        self.now_ms = now_ms
        self.summary = RunSummary(report=transformer.report)
        self._checkpoint = Checkpoint()

    def collect(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        """One pass. A failing event type is recorded in ``summary.failures`` and the other still runs."""
        self._checkpoint = checkpoint or Checkpoint()
        # The client (and its counters) lives as long as the host's connector: report this pass's share only.
        http_before = self.client.stats.as_dict()
        steps = {"audit": self._audit, "user_management": self._inventory}
        try:
            for event_type in self.event_types:
                try:
                    for batch in steps[event_type]():
                        yield batch
                        # The consumer asked for more: it has stored (or written) this batch.
                        if batch.table is not None and batch.events:
                            self.summary.delivered[batch.table] += len(batch.events)
                except ConnectorError as exc:
                    self.summary.failures[event_type] = str(exc)
                    self.summary.exit_code = max(self.summary.exit_code, exc.exit_code)
                    _log.error("collection failed", extra={"event_type": event_type, "error": str(exc)})
        finally:
            self.summary.http = _stats_delta(http_before, self.client.stats.as_dict())

    def _commit(self, **changes: Any) -> Checkpoint:
        self._checkpoint = dataclasses.replace(self._checkpoint, updated_at_ms=self.now_ms(), **changes)
        return self._checkpoint

    # ------------------------------------------------------------------------------------------------ audit
    def _audit(self) -> Iterator[Batch]:
        state = self._checkpoint.audit
        now = self.now_ms()
        previous_cursor = state.cursor_ms
        if previous_cursor is not None and previous_cursor > now:
            restart = _iso(now - self.audit.lookback_ms)
            self._future(
                f"audit cursor {_iso(previous_cursor)} lies after now ({_iso(now)}): the clock went back or the "
                f"checkpoint is wrong; audit collected from now - initial lookback ({restart}), as on a first run "
                "(records already delivered may be sent again)",
                "audit cursor after now",
                previous_cursor,
                now,
            )
            previous_cursor = None
        start = now - self.audit.lookback_ms if previous_cursor is None else previous_cursor - self.audit.overlap_ms
        floor = now - HISTORY_MS
        if start < floor:
            self.summary.history_gap = (start, floor)
            _log.warning("audit history gap", extra={"from": _iso(start), "to": _iso(floor)})
            start = floor
        self.summary.audit_window = (start, now)
        self.summary.audit_cursor_ms = previous_cursor
        seen = dict(state.seen)
        # Page checkpoints of the first slice pin this window's start (the next window begins at cursor - overlap):
        # without a cursor yet (first run) or with one older than the history, a restart would otherwise
        # recompute the start from its own "now" and skip what lies between the two starts.
        cursor = start + self.audit.overlap_ms
        slices: list[tuple[int, int]] = []
        slice_start = start
        while slice_start < now:
            slices.append((slice_start, min(slice_start + SLICE_MS, now)))
            slice_start = slices[-1][1]
        # One stream of pages over all the slices: with read-ahead the client asks for the next slice's first page
        # while this one's last page is still being mapped.
        pages = self.client.audit_event_windows(
            [(ms_to_datetime(a), ms_to_datetime(b)) for a, b in slices],
            categories=list(self.audit.categories) or None,
        )
        for page in pages:
            slice_end = slices[page.window][1]
            if page.records:
                yield from self._audit_page(page.records, slice_end, seen, cursor, previous_cursor)
            if not page.last:
                continue
            cursor = slice_end
            # The next window is sent in whole seconds, so it re-reads the whole second it starts in.
            keep_from = _whole_second(cursor - self.audit.overlap_ms)
            seen = {rid: t for rid, t in seen.items() if t >= keep_from}
            self.summary.audit_cursor_ms = cursor
            yield Batch(None, None, [], self._commit(audit=AuditState(cursor_ms=cursor, seen=seen)))

    def _audit_page(
        self, page: list[Any], end: int, seen: dict[str, int], cursor: int, previous_cursor: int | None
    ) -> Iterator[Batch]:
        """Map one page of a slice ending at ``end``; one batch per table, the last carrying a checkpoint that
        keeps the cursor where it was (the slice is not complete yet)."""
        self.summary.pages += 1
        by_table: dict[str, list[MappedEvent]] = defaultdict(list)
        fresh = False
        for record in page:
            self.summary.audit_records += 1
            record_id = record.get("id") if isinstance(record, dict) else None
            has_id = isinstance(record_id, str) and record_id
            if has_id and record_id in seen:
                self.summary.duplicates += 1
                continue
            fresh = True
            # the position in this pass is what names a record without an id
            mapped = self.transformer.audit_record(record, self.summary.audit_records)
            if mapped is not None:
                by_table[mapped.table].append(mapped)
            if has_id:
                assert isinstance(record_id, str)
                # reuse the time the mapper parsed; parse only records it did not emit
                event_time = mapped.event["time"] if mapped is not None else _event_time(record, end)
                seen[record_id] = event_time
                if previous_cursor is not None and event_time < previous_cursor:
                    self._note_late(record_id, previous_cursor - event_time)
        if not fresh:
            return
        checkpoint = self._commit(audit=AuditState(cursor_ms=cursor, seen=seen))
        yield from _table_batches(by_table, checkpoint)
        if self.summary.pages % 20 == 0:
            _log.info("audit progress", extra={"pages": self.summary.pages, "records": self.summary.audit_records})

    def _future(self, warning: str, message: str, stored_ms: int, now: int) -> None:
        """Say loudly that a stored time lies after now and is not used (summary line and log warning)."""
        self.summary.warnings.append(warning)
        _log.warning(message, extra={"stored": _iso(stored_ms), "now": _iso(now)})

    def _note_late(self, record_id: str, late_ms: int) -> None:
        self.summary.max_late_ms = max(self.summary.max_late_ms, late_ms)
        if self.audit.lag_warning_ms and late_ms >= self.audit.lag_warning_ms:
            self.summary.lag_warnings += 1
            _log.warning(
                "audit record indexed late, close to the overlap edge",
                extra={"record_id": record_id, "late_minutes": round(late_ms / MINUTE_MS, 1),
                       "overlap_minutes": self.audit.overlap_ms // MINUTE_MS},
            )  # fmt: skip

    # -------------------------------------------------------------------------------------------- inventory
    def _inventory(self) -> Iterator[Batch]:
        state = self._checkpoint.inventory
        now = self.now_ms()
        if state.collected_at_ms is not None and state.collected_at_ms > now:
            self._future(
                f"directory collected_at {_iso(state.collected_at_ms)} lies after now ({_iso(now)}): the clock went "
                "back or the checkpoint is wrong; the directory is pulled now",
                "directory collected_at after now",
                state.collected_at_ms,
                now,
            )
        elif state.collected_at_ms is not None and now - state.collected_at_ms < self.inventory_interval_ms:
            self.summary.inventory_skipped_until_ms = state.collected_at_ms + self.inventory_interval_ms
            return
        groups = self._groups()
        memberships = self._members(groups)
        self.summary.inventory_groups = len(groups)
        member_of: dict[str, list[dict[str, str]]] = defaultdict(list)
        for group_id, (name, members) in memberships.items():
            for address in members:
                member_of[address].append({"id": group_id, "description": name})
        pending: list[MappedEvent] = []
        for domain in self.client.internal_domains():
            domain_name = domain.get("domain") if isinstance(domain, dict) else None
            if not isinstance(domain_name, str) or not domain_name:
                continue
            users = (self._with_groups(user, member_of) for user in self.client.internal_users(domain_name))
            for mapped in self.transformer.users(users, now, start=self.summary.inventory_users + 1):
                pending.append(mapped)
                if len(pending) >= USER_BATCH:
                    yield Batch("user_inventory", 5003, [m.event for m in pending], None)
                    pending = []
            self.summary.inventory_users = self.transformer.report.emitted["user_inventory"]
        if pending:
            yield Batch("user_inventory", 5003, [m.event for m in pending], None)
        # GroupMembership normalises members (lower-cased, de-duplicated, sorted): the stored form is the snapshot.
        snapshot = {gid: GroupMembership(name, tuple(members)) for gid, (name, members) in memberships.items()}
        checkpoint = self._commit(inventory=InventoryState(collected_at_ms=now, memberships=snapshot))
        changes = []
        if state.memberships is not None:
            diff = diff_memberships(state.memberships, snapshot)
            baseline = state.collected_at_ms if state.collected_at_ms is not None else now
            diff_events = self.transformer.mapper.map_membership_changes(diff, now, baseline_ms=baseline)
            changes = [m for m in diff_events if self.transformer.accept(m)]
        self.summary.membership_changes = len(changes)
        yield Batch("group_management", 3006, [m.event for m in changes], checkpoint)

    def _groups(self) -> list[dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = {}
        for source in GROUP_SOURCES:
            for group in self.client.groups(source):
                if isinstance(group, dict) and isinstance(group.get("id"), str):
                    groups.setdefault(group["id"], group)
        return list(groups.values())

    def _members(self, groups: list[dict[str, Any]]) -> dict[str, tuple[str, list[str]]]:
        def read(group: dict[str, Any]) -> tuple[str, tuple[str, list[str]]]:
            members = [
                m["emailAddress"].lower()
                for m in self.client.group_members(group["id"])
                if isinstance(m, dict) and isinstance(m.get("emailAddress"), str)
            ]
            return group["id"], (str(group.get("description") or group["id"]), members)

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="members") as pool:
            return dict(pool.map(read, groups))

    @staticmethod
    def _with_groups(user: object, member_of: Mapping[str, list[dict[str, str]]]) -> object:
        if isinstance(user, dict) and isinstance(user.get("emailAddress"), str):
            groups = member_of.get(user["emailAddress"].lower())
            if groups:
                return {**user, "groups": groups}
        return user


def _stats_delta(before: Mapping[str, int | float], after: Mapping[str, int | float]) -> dict[str, int | float]:
    """``after - before`` per counter (floats rounded like ``ClientStats.as_dict``)."""
    delta: dict[str, int | float] = {}
    for key, value in after.items():
        change = value - before.get(key, 0)
        delta[key] = round(change, 3) if isinstance(change, float) else change
    return delta


def _table_batches(by_table: Mapping[str, list[MappedEvent]], checkpoint: Checkpoint) -> Iterator[Batch]:
    """One batch per table; only the last carries the checkpoint (it covers the whole page)."""
    tables = sorted(by_table)
    if not tables:
        yield Batch(None, None, [], checkpoint)
        return
    for index, table in enumerate(tables):
        mapped = by_table[table]
        last = index == len(tables) - 1
        yield Batch(table, mapped[0].class_uid, [m.event for m in mapped], checkpoint if last else None)
