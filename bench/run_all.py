"""``make bench``: run every benchmark, each in its own process, and regenerate its section of bench/RESULTS.md.

Usage::

    .venv/bin/python bench/run_all.py [--only pull memory ...] [--no-write]

In order: ``bench_mapping.py`` (mapping, validation and serialization; skipped when absent), ``bench_pull.py``
(end-to-end pull and inventory against the floor of requests x latency), ``bench_memory.py`` (peak RSS at 100k and
1M events, to NDJSON and, with ``--sink parquet``, to the Parquet sink), ``bench_ratelimit.py`` (quota and reset
header), ``bench_event_info.py`` (eventInfo parsing of hostile texts, 1 KB to 1 MB), ``bench_hostile.py`` (a hostile
server at the real caps: time and peak RSS per attack), ``bench_client.py`` (threads per pull, read-ahead on and
off, against commit 8530881), ``bench_state.py`` (checkpoint state size, save time and per-page cost at 100k and 1M
keys), ``bench_email_mapping.py`` (SIEM map+validate against plain JSON, next to audit's ratio measured the same
way), ``bench_parquet.py`` (peak RSS of 1M events to the Parquet sink, and its time against the NDJSON sink),
``bench_siem.py`` (SIEM key state at 1M keys, a 7-day batch catch-up against its download floor, peak RSS of a
1M-record pull), ``bench_catchup.py`` (an audit catch-up at L = 200 ms with ``catchup_concurrency`` 1 and 4, about
2.5 minutes). Each prints its tables and replaces only its own section of RESULTS.md, re-reading the file first, so
sections written by the others stay as they are. The whole run takes about 15-18 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCRIPTS = {
    "mapping": "bench_mapping.py",
    "pull": "bench_pull.py",
    "memory": "bench_memory.py",
    "memory_parquet": "bench_memory.py --sink parquet",
    "ratelimit": "bench_ratelimit.py",
    "event_info": "bench_event_info.py",
    "hostile": "bench_hostile.py",
    "client": "bench_client.py",
    "state": "bench_state.py",
    "email_mapping": "bench_email_mapping.py",
    "parquet": "bench_parquet.py",
    "siem": "bench_siem.py",
    "catchup": "bench_catchup.py",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks in turn; the exit code is the first failure's, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), help="run only these")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    selected = [name for name in SCRIPTS if not args.only or name in args.only]
    timings: list[tuple[str, str, float]] = []
    status = 0
    for name in selected:
        filename, *options = SCRIPTS[name].split()
        script = BENCH / filename
        if not script.exists():
            print(f"== {name}: {script.name} not found, skipped", flush=True)
            timings.append((name, "skipped", 0.0))
            continue
        command = [sys.executable, str(script), *options] + (["--no-write"] if args.no_write else [])
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        elapsed = time.perf_counter() - started
        timings.append((name, "ok" if code == 0 else f"FAILED ({code})", elapsed))
        if code and not status:
            status = code
    print("\n| benchmark | result | seconds |\n|---|---|---|")
    for name, result, elapsed in timings:
        print(f"| {name} | {result} | {elapsed:.0f} |")
    print(f"| total | {'ok' if not status else 'FAILED'} | {sum(t for _, _, t in timings):.0f} |")
    if not args.no_write:
        print(f"results in {(BENCH / 'RESULTS.md').relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
