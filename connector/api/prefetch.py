"""Bounded read-ahead: run an iterator on one worker thread, a few items ahead of the caller, and stop it on demand.

:class:`Prefetch` wraps any iterator (a walk over pages, here). The first item is produced on the caller's thread
(the caller has to wait for it anyway); from then on one worker thread produces the next items while the caller
works on the ones it has, at most ``ahead`` items that the caller has not taken yet. So a network wait overlaps
the caller's work instead of adding to it, and memory stays bounded (``ahead`` items, plus the one in the
caller's hand). When a hint says the first item was the source's last, no worker is started at all.

* Errors are re-raised on the caller's thread at the position they happened, after the items before them.
* ``close()`` (or leaving the ``with`` block, or the iterator being garbage-collected) sets the ``cancel``
  event, which the producer's own waits may honour (the retry loop's backoff and 429 waits end at once), and
  waits for the worker to end, so that once it returns no request of this iterator is still running. Items the
  worker had produced are dropped.
* The worker never holds a reference to the ``Prefetch``, so an abandoned one is collected and its worker ends.
  The cyclic GC may run that finalizer on the worker itself: it does not wait for its own thread then; the
  worker ends on its own right after (``tests/test_read_ahead_finalizer.py``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Prefetch"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Raised:
    error: BaseException


# What the worker hands over: ``(item,)``, the error that ended the source, or ``None`` at its end.
_Handed = tuple[T] | _Raised | None


@dataclass(eq=False)
class _Channel(Generic[T]):
    """What the caller and the worker share (the worker sees only this, never the ``Prefetch``)."""

    source: Iterator[T]
    slots: threading.Semaphore
    cancel: threading.Event
    handed: queue.SimpleQueue[_Handed[T]]


def _close_source(source: Iterator[T]) -> None:
    close: Callable[[], object] | None = getattr(source, "close", None)
    if close is not None:
        close()


def _produce(channel: _Channel[T]) -> None:
    """The worker: take a slot, produce an item, hand it over; stop at the end, at an error, or when cancelled."""
    try:
        while True:
            channel.slots.acquire()
            if channel.cancel.is_set():
                return
            try:
                item = next(channel.source)
            except StopIteration:
                channel.handed.put(None)
                return
            except BaseException as exc:  # handed to the caller, in order, after the items before it
                if not channel.cancel.is_set():
                    channel.handed.put(_Raised(exc))
                return
            if channel.cancel.is_set():  # closed while producing: dropped
                return
            channel.handed.put((item,))
    finally:
        _close_source(channel.source)


class Prefetch(Generic[T]):
    """``source``'s items, produced on one worker thread up to ``ahead`` items before the caller takes them.

    Args:
        source: Any iterator; it runs on the caller's thread for its first item, then on the worker.
        ahead: Most items produced and not yet taken (at least 1).
        cancel: Set by :meth:`close`; give the same event to whatever the source waits on, so that its waits
            end when the caller closes. Default: a new event (:attr:`cancelled`).
        last: Says whether an item is the source's last; after such a first item no worker is started.
        name: The worker thread's name.
    """

    def __init__(
        self,
        source: Iterator[T],
        *,
        ahead: int = 2,
        cancel: threading.Event | None = None,
        last: Callable[[T], bool] | None = None,
        name: str = "read-ahead",
    ) -> None:
        if ahead < 1:
            raise ValueError("ahead must be at least 1")
        self._channel: _Channel[T] = _Channel(
            source, threading.Semaphore(ahead), cancel if cancel is not None else threading.Event(), queue.SimpleQueue()
        )
        self._last = last
        self._name = name
        self._worker: threading.Thread | None = None
        self._started = False  # the first item was produced (inline)
        self._closed = False

    @property
    def cancelled(self) -> threading.Event:
        """The event :meth:`close` sets."""
        return self._channel.cancel

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        if self._worker is None:
            return self._next_inline()
        handed = self._channel.handed.get()
        if handed is None:
            self.close()
            raise StopIteration
        if isinstance(handed, _Raised):
            self.close()
            raise handed.error
        self._channel.slots.release()
        return handed[0]

    def _next_inline(self) -> T:
        """The next item produced on this thread: the first one, or all of them after a first item that was last."""
        try:
            item = next(self._channel.source)
        except BaseException:  # StopIteration included: the source is done
            self.close()
            raise
        if not self._started:
            self._started = True
            if self._last is None or not self._last(item):
                self._worker = threading.Thread(target=_produce, args=(self._channel,), name=self._name, daemon=True)
                self._worker.start()
        return item

    def close(self) -> None:
        """Stop the worker and wait until it has ended (not when called on the worker itself); idempotent."""
        if self._closed:
            return
        self._closed = True
        channel = self._channel
        channel.cancel.set()
        worker = self._worker
        if worker is None:
            _close_source(channel.source)
            return
        channel.slots.release()  # wakes a worker waiting for a slot: it sees the event and ends
        if threading.current_thread() is not worker:
            worker.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_closed"):  # not when __init__ refused its arguments
            self.close()
