"""Checkpoint state: size on disk, save time, and the cost a page pays to carry the state, at 100k and 1M keys.

Two dedup states of a window stream, measured in the same run:

* ``ids`` (the audit stream, and the only state before checkpoint version 2): record id -> event time, a frozen
  dict copied into every page's checkpoint (``WindowState``), audit-like ids of 46 characters;
* ``content keys`` (streams without record ids): 16-character keys grouped per minute, a ``KeySnapshot`` per page
  that names the live log's lists and a length instead of copying them (``KeyedWindowState``).

"per page" is what ``WindowRun`` does for every page: add the page's 500 keys, build the page's state and the
checkpoint that carries it. "save" is ``CheckpointStore.save`` (JSON, fsync, rename): the runner does it at most
every 2 seconds, not per page. Ratios are against the ``ids`` state with the same number of keys, in this run.

    .venv/bin/python bench/bench_state.py
"""

from __future__ import annotations

import random
import string
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import best_of, machine_description
from connector.checkpoint import Checkpoint
from connector.store import CheckpointStore
from connector.streams.keys import KeyLog, content_key
from connector.streams.window import KeyedWindowState, WindowState

PAGE = 500
T0 = 1_781_524_800_000


def best(fn: Callable[[], object], repeat: int) -> float:
    return best_of(repeat, fn)


def audit_ids(n: int, rnd: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_"
    return ["eNqrVkqp" + "".join(rnd.choices(alphabet, k=38)) for _ in range(n)]


def measure(n: int, repeat: int) -> list[tuple[str, int, float, float]]:
    """(state, bytes, save seconds, per-page seconds) for both states at ``n`` keys."""
    rnd = random.Random(n)
    times = [T0 + rnd.randrange(6 * 3600_000) for _ in range(n)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = CheckpointStore(Path(folder) / "checkpoint.json")

        ids = dict(zip(audit_ids(n, rnd), times, strict=True))
        page_ids = audit_ids(PAGE, rnd)

        def id_page() -> None:
            seen = dict(ids)  # WindowRun's live set
            for key in page_ids:
                seen[key] = T0
            Checkpoint().with_state("audit", WindowState(cursor_ms=T0, seen=seen), T0)

        id_checkpoint = Checkpoint().with_state("audit", WindowState(cursor_ms=T0, seen=ids), T0)
        save = best(lambda: store.save(id_checkpoint), repeat)
        size = store.path.stat().st_size
        # the copy of ``ids`` into ``seen`` is setup, not page work: subtract a bare copy
        page = max(best(id_page, repeat) - best(lambda: dict(ids), repeat), 0.0)
        rows.append(("ids (audit)", size, save, page))

        log = KeyLog()
        for index, time_ms in enumerate(times):
            log.add(content_key({"n": index}), time_ms)
        page_keys = [content_key({"page": index}) for index in range(PAGE)]

        def key_page() -> None:
            for key in page_keys:
                log.add(key, T0)
            Checkpoint().with_state("siem", KeyedWindowState(cursor_ms=T0, keys=log.snapshot()), T0)

        key_checkpoint = Checkpoint().with_state("siem", KeyedWindowState(cursor_ms=T0, keys=log.snapshot()), T0)
        save = best(lambda: store.save(key_checkpoint), repeat)
        size = store.path.stat().st_size
        rows.append(("content keys", size, save, best(key_page, repeat)))
    return rows


def main() -> None:
    for key, value in machine_description().items():
        print(f"- {key}: {value}")
    print()
    print("| keys | state | file MB | x ids | save ms | x ids | per page ms | x ids |")
    print("|---|---|---|---|---|---|---|---|")
    for n, repeat in ((100_000, 5), (1_000_000, 2)):
        rows = measure(n, repeat)
        _, base_size, base_save, base_page = rows[0]
        for name, size, save, page in rows:
            print(
                f"| {n:,} | {name} | {size / 2**20:.2f} | {size / base_size:.2f} | {save * 1000:.0f} | "
                f"{save / base_save:.2f} | {page * 1000:.2f} | {page / base_page if base_page else 0:.3f} |"
            )


if __name__ == "__main__":
    main()
