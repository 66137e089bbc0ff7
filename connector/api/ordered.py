"""Ordered concurrent walks: read up to ``concurrency`` walks at once, hand their items out in walk order.

A catch-up reads many listings (time slices) whose pages depend on nothing but their own page tokens, so several
can be read at once; but what the caller does with them (a cursor that moves past a prefix of whole slices, a
dedup set) needs them in order. :func:`ordered_walks` does both:

* The first walk is opened alone; the others only once it has produced its first item. A failure that every
  walk would meet (credentials refused, a product missing, the endpoint down) then costs one request, not
  ``concurrency`` of them, for the price of one round trip.
* Walks are opened in order, at most ``concurrency`` at a time. Each open walk runs on a worker of its own (a
  :class:`~connector.api.prefetch.Prefetch`), at most ``ahead`` items ahead of the caller, from the moment it is
  opened: the first item too is produced on the worker, so the walks after the one being consumed are read while
  it is.
* Items are handed out walk after walk: all of walk 1's, then walk 2's (most of which were read meanwhile)... A
  walk's slot is given to the next walk once its last item was handed out, so memory stays bounded by
  ``concurrency x ahead`` items plus the one in the caller's hand, whatever the number of walks.
* An error is raised when the caller reaches it, after every item before it in walk order; walks after it that
  were read ahead are dropped (never handed out), and their workers stopped.
* Closing the generator (or an error, or garbage collection) sets every open walk's cancel event (the retry
  loop's backoff and 429 waits end at once; no new request is sent) and waits for their workers to end: once it
  returns, no request of the walk is still running.

The walks are given as factories: ``walk(cancel)`` returns the iterator of one walk, whose waits honour
``cancel``. They are called (and ``walks`` iterated) on the caller's thread, when a slot opens, so a caller may
compute the next walk from what it has read so far.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain
from typing import Final, TypeVar

from connector.api.prefetch import Prefetch

__all__ = ["Walk", "ordered_walks"]

T = TypeVar("T")

Walk = Callable[[threading.Event], Iterator[T]]
"""One walk: given the cancel event its waits must honour, the iterator of its items."""

_OPENED: Final = object()
"""Taken on the caller's thread the moment a walk is opened, so that its worker starts at once."""


def _open(walk: Walk[T], ahead: int, name: str) -> Prefetch[object]:
    cancel = threading.Event()
    # The marker is produced inline (Prefetch produces its first item on the caller's thread) and starts the
    # worker, which then reads the walk's real items, ``ahead`` at most before the caller takes them.
    prefetch: Prefetch[object] = Prefetch(chain((_OPENED,), walk(cancel)), ahead=ahead, cancel=cancel, name=name)
    next(prefetch)
    return prefetch


def ordered_walks(
    walks: Iterable[Walk[T]],
    *,
    concurrency: int,
    ahead: int,
    last: Callable[[T], bool] | None = None,
    name: str = "walk",
) -> Generator[tuple[int, T], None, None]:
    """``(walk index, item)`` of every walk in turn, up to ``concurrency`` walks read at once.

    Args:
        walks: The walks, in order (iterated lazily, one when a slot opens).
        concurrency: Most walks open at once (at least 1).
        ahead: Most items of one walk read and not yet handed out (at least 1).
        last: Says whether an item is its walk's last; the next walk is then opened before the item is handed
            out rather than after (one caller's step sooner). A walk still ends only where its iterator ends.
        name: Prefix of the workers' thread names (``name-<index>``).

    Raises:
        Whatever a walk raises, when the caller reaches it.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    pending = iter(walks)
    waiting: deque[tuple[int, Prefetch[object]]] = deque()  # opened, after the one being handed out
    current: Prefetch[object] | None = None  # the walk being handed out
    reading = False  # whether it still holds a slot (until its last item is reached)
    count = 0
    width = 1  # one walk until its first item has come: a refused credential or product costs one request

    def fill() -> None:
        nonlocal count
        while len(waiting) + reading < width:
            walk = next(pending, None)
            if walk is None:
                return
            waiting.append((count, _open(walk, ahead, f"{name}-{count}")))
            count += 1

    try:
        fill()
        while waiting:
            index, current = waiting.popleft()
            reading = True
            for item in current:
                value: T = item  # type: ignore[assignment]  # only the first item is the marker, taken in _open
                if width < concurrency:
                    width = concurrency
                    fill()
                if reading and last is not None and last(value):
                    reading = False  # it has read all it will: its slot goes to the next walk now
                    fill()
                yield index, value
            reading, current = False, None
            fill()
    finally:
        open_walks = [prefetch for _, prefetch in waiting]
        if current is not None:
            open_walks.insert(0, current)
        for prefetch in open_walks:  # cancel them all first, so that their waits end together
            prefetch.cancelled.set()
        for prefetch in open_walks:
            prefetch.close()
        waiting.clear()
