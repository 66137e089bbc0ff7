"""SIEM figures: key state at 1M keys, a 7-day batch catch-up against its download floor, peak RSS of a 1M-record pull.

Usage::

    .venv/bin/python bench/bench_siem.py [--records 1000000] [--files 200] [--latency 0.2] [--no-write]

* **State.** 1M content keys of one type over two hours (the key horizon): memory held (tracemalloc) and the cost
  of one page's checkpoint (snapshot + ``to_dict`` + ``json.dumps``) after 500 new keys, for the SIEM
  ``KeyBuckets`` and for the generic ``KeyLog`` / ``KeySnapshot`` (which rebuilds every bucket's text per save).
* **Catch-up.** One type whose 7-day listing yields N files, every download taking L seconds on the simulator's file
  host: the pull's wall time against the floor N x L / c (c = ``DOWNLOAD_CONCURRENCY``); the ratio must stay <= 1.2.
* **Memory.** A pull of ``--records`` receipt records in ``--files`` files, in a fresh worker process writing to an
  NDJSON sink and committing as ``cli run`` does: ``ru_maxrss``, which must stay under 150 MB.

Written into bench/RESULTS.md, section "## SIEM".
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_pull import machine, machine_lines, table, write_section  # noqa: E402

HEADING = "## SIEM"
LIMIT_MIB = 150
RATIO_LIMIT = 1.2
T0 = 1_781_524_800_000
NOW = T0 / 1000


def keys(n: int) -> list[tuple[str, int]]:
    from connector.streams.keys import content_key

    return [(content_key({"n": i}), T0 + (i * 7_200_000) // n) for i in range(n)]


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_state(n: int) -> list[list[object]]:
    from connector.streams.keys import KeyLog
    from connector.streams.siem_state import KeyBuckets

    entries = keys(n)
    extra = keys(n + 500)[n:]
    rows: list[list[object]] = []
    for name, build in (("SIEM KeyBuckets", KeyBuckets), ("generic KeyLog", KeyLog)):
        gc.collect()
        tracemalloc.start()
        log = build()
        for key, t in entries:
            log.add(key, t)
        snapshot = log.snapshot(T0 + 7_200_000) if isinstance(log, KeyBuckets) else log.snapshot()
        if isinstance(log, KeyBuckets):
            snapshot = log.snapshot(T0 + 7_200_000)  # the sets of minutes no page touched since are let go
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()

        def page(log: object = log) -> str:
            for key, t in extra:
                log.add(key, t)  # type: ignore[attr-defined]
            snap = log.snapshot(T0 + 7_200_000) if isinstance(log, KeyBuckets) else log.snapshot()  # type: ignore[attr-defined]
            return json.dumps({"keys": snap.to_dict()}, separators=(",", ":"))

        text = page()
        seconds = best(page)
        rows.append([name, f"{n:,}", f"{held / n:.0f}", f"{len(text) / 2**20:.1f}", f"{seconds * 1000:.0f}"])
        del log, snapshot
    return rows


def measure_catchup(files: int, latency: float) -> list[object]:
    from connector.host import MimecastConnector
    from connector.simulator import SiemSpec, Simulator
    from connector.simulator.tenant import TenantSpec
    from connector.streams.siem_batch import DOWNLOAD_CONCURRENCY

    spec = SiemSpec(records_per_type={"receipt": files * 50}, days=7, file_interval_seconds=7 * 86400 / files)
    with Simulator(TenantSpec(seed=1, users=1, groups=1, days=0.01), clock=lambda: NOW, siem=spec) as sim:
        assert sim.siem is not None
        listed = len(sim.siem.files("receipt"))
        sim.faults.siem_download_latency_seconds = latency
        params = {"api_base_url": sim.base_url, "client_key": "simulator-client-id",
                  "client_secret": "simulator-client-secret", "event_types": ["siem"],
                  "siem_log_types": ["receipt"], "siem_initial_lookback_hours": 168}  # fmt: skip
        with MimecastConnector(params, environ={}, now_ms=lambda: T0) as connector:
            start = time.perf_counter()
            events = sum(len(batch.events) for batch in connector.collect(None))
            seconds = time.perf_counter() - start
    floor = listed * latency / DOWNLOAD_CONCURRENCY
    return [f"{listed}", f"{latency * 1000:.0f} ms", DOWNLOAD_CONCURRENCY, f"{events:,}", f"{floor:.2f}",
            f"{seconds:.2f}", f"{seconds / floor:.2f}"]  # fmt: skip


def worker(base_url: str) -> dict[str, object]:
    from connector.host import MimecastConnector
    from connector.runner import deliver
    from connector.sinks.ndjson import NdjsonSink
    from connector.store import CheckpointStore

    params = {"api_base_url": base_url, "client_key": "simulator-client-id",
              "client_secret": "simulator-client-secret", "event_types": ["siem"],
              "siem_log_types": ["receipt"], "siem_initial_lookback_hours": 168}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        sink = NdjsonSink(str(Path(tmp) / "out"), per_table=True)
        store = CheckpointStore(Path(tmp) / "state.json")
        start = time.perf_counter()
        with MimecastConnector(params, environ={}, now_ms=lambda: T0) as connector:
            deliver(connector.collect(None), [sink], store)
            delivered = sum(connector.summary.delivered.values())
        sink.close()
        seconds = time.perf_counter() - start
        state_mib = (Path(tmp) / "state.json").stat().st_size / 2**20
    return {"events": delivered, "seconds": seconds, "state_mib": state_mib,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def measure_memory(records: int, files: int) -> list[object]:
    from connector.simulator import SiemSpec, Simulator
    from connector.simulator.tenant import TenantSpec

    spec = SiemSpec(records_per_type={"receipt": records}, days=7, file_interval_seconds=7 * 86400 / files)
    with Simulator(TenantSpec(seed=1, users=1, groups=1, days=0.01), clock=lambda: NOW, siem=spec) as sim:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", sim.base_url], check=True, capture_output=True, text=True
        )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return [f"{figures['events']:,}", files, f"{figures['seconds']:.0f}", f"{figures['state_mib']:.1f}",
            f"{figures['maxrss_mib']:.0f}", LIMIT_MIB]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--catchup-files", type=int, default=200)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", metavar="BASE_URL")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    # the pull first: a child's ru_maxrss starts from its parent's RSS at the fork, and the state figures below
    # hold a million keys twice in this process
    memory = measure_memory(args.records, args.files)
    catchup = measure_catchup(args.catchup_files, args.latency)
    state = measure_state(args.keys)
    body = "\n".join([
        machine_lines(machine()), "",
        f"Reproduce: `.venv/bin/python bench/bench_siem.py --records {args.records} --files {args.files} "
        f"--latency {args.latency} --catchup-files {args.catchup_files} --keys {args.keys}`", "",
        "### Key state of one type (1 page = 500 new keys, then snapshot + to_dict + json.dumps)", "",
        table(["structure", "keys", "bytes held per key", "state text (MB)", "one page's save (ms)"], state), "",
        "### 7-day batch catch-up of one type (floor = files x latency / concurrency)", "",
        table(["files", "latency", "c", "events", "floor (s)", "measured (s)", "ratio (<= 1.2)"], [catchup]), "",
        "### Peak RSS of a pull (fresh process, NDJSON sink, commits every 2 s)", "",
        table(["events", "files", "seconds", "checkpoint (MB)", "ru_maxrss (MiB)", "limit (MiB)"], [memory]),
    ])  # fmt: skip
    print(body)
    if not args.no_write:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
