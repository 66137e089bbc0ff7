"""connector.api.prefetch.Prefetch on plain iterators: one worker, bounded, ordered errors, cancellation."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import pytest

from connector.api.prefetch import Prefetch


def _wait_until(condition: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.002)


class Source:
    """Counts up to ``count``, recording which thread produced each item; may fail at ``fail_at``."""

    def __init__(self, count: int, fail_at: int | None = None, hold: threading.Event | None = None) -> None:
        self.count, self.fail_at, self.hold = count, fail_at, hold
        self.produced: list[tuple[int, str]] = []
        self.closed = threading.Event()

    def items(self) -> Iterator[int]:
        try:
            for n in range(self.count):
                if n == self.fail_at:
                    raise LookupError(f"item {n} failed")
                if self.hold is not None and n > 0:
                    self.hold.wait(5)
                self.produced.append((n, threading.current_thread().name))
                yield n
        finally:
            self.closed.set()


def test_items_come_in_order_the_first_from_the_callers_thread_the_rest_from_one_worker() -> None:
    source = Source(6)
    assert list(Prefetch(source.items(), name="ahead")) == list(range(6))
    threads = [name for _, name in source.produced]
    assert threads[0] == threading.current_thread().name
    assert set(threads[1:]) == {"ahead"}
    assert source.closed.is_set()


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_at_most_ahead_items_are_produced_before_the_caller_takes_them(ahead: int) -> None:
    source = Source(20)
    with Prefetch(source.items(), ahead=ahead) as items:
        assert next(items) == 0
        _wait_until(lambda: len(source.produced) >= 1 + ahead)
        time.sleep(0.05)  # a runaway worker would show itself here
        assert len(source.produced) == 1 + ahead
        assert next(items) == 1
        _wait_until(lambda: len(source.produced) >= 2 + ahead)
        time.sleep(0.05)
        assert len(source.produced) == 2 + ahead


def test_an_error_is_raised_at_its_position_after_the_items_before_it() -> None:
    items = Prefetch(Source(10, fail_at=3).items())
    got: list[int] = []
    with pytest.raises(LookupError, match="item 3 failed"):
        for item in items:
            got.append(item)
    assert got == [0, 1, 2]
    assert list(items) == []  # closed: nothing after the error


def test_an_error_on_the_first_item_is_raised_at_once_without_a_worker() -> None:
    before = threading.active_count()
    with pytest.raises(LookupError):
        next(Prefetch(Source(3, fail_at=0).items()))
    assert threading.active_count() == before


def test_close_stops_the_worker_and_waits_for_the_item_it_is_producing() -> None:
    hold = threading.Event()
    source = Source(10, hold=hold)
    items = Prefetch(source.items())
    assert next(items) == 0  # the worker now waits inside item 1
    threading.Timer(0.1, hold.set).start()
    started = time.monotonic()
    items.close()
    assert time.monotonic() - started >= 0.05  # it waited for the item in progress
    assert items.cancelled.is_set() and source.closed.is_set()
    produced = len(source.produced)
    time.sleep(0.05)
    assert len(source.produced) == produced  # nothing produced after close() returned
    assert list(items) == []


def test_a_producer_waiting_on_the_cancel_event_is_released_by_close_at_once() -> None:
    cancel = threading.Event()

    def items() -> Iterator[int]:
        yield 0
        cancel.wait(60)  # the retry loop's 429 wait, say
        yield 1

    prefetch = Prefetch(items(), cancel=cancel)
    assert next(prefetch) == 0
    time.sleep(0.02)
    started = time.monotonic()
    prefetch.close()
    assert time.monotonic() - started < 1.0


def test_no_worker_is_started_when_the_first_item_is_the_last() -> None:
    source = Source(1)
    items = Prefetch(source.items(), last=lambda n: n == 0, name="never")
    assert list(items) == [0]
    assert [name for _, name in source.produced] == [threading.current_thread().name]
    assert source.closed.is_set()


def test_the_last_hint_is_only_a_hint_the_rest_is_still_read() -> None:
    assert list(Prefetch(iter([0, 1, 2]), last=lambda n: n == 0)) == [0, 1, 2]


def test_an_abandoned_prefetch_is_collected_and_its_worker_ends() -> None:
    source = Source(100)
    items = Prefetch(source.items(), name="abandoned")
    next(items)
    _wait_until(lambda: len(source.produced) >= 3)
    holder: list[object] = [items]
    holder.append(holder)  # only reachable through a cycle: the cyclic GC must close it
    del items, holder
    gc.collect()
    assert source.closed.wait(2)
    _wait_until(lambda: not any(t.name == "abandoned" for t in threading.enumerate()))
    assert not any(t.name == "abandoned" for t in threading.enumerate())


def test_closing_before_the_first_item_closes_the_source_on_this_thread() -> None:
    source = Source(3)
    items = Prefetch(source.items())
    next(items)  # the generator has started (a never-started one has no finally to run)
    fresh = Source(3)
    untouched = Prefetch(fresh.items())
    untouched.close()
    items.close()
    assert source.closed.is_set()
    assert fresh.produced == []


def test_ahead_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Prefetch(iter([1]), ahead=0)
