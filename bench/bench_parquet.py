"""Peak RSS of a 1M-event pull to the Parquet sink (Security Lake layout), and its cost against the NDJSON sink.

Usage::

    .venv/bin/python bench/bench_parquet.py [--events 1000000] [--no-write]

Events are generated cheaply and realistically: the golden OCSF events of the four audit tables (``tests/golden``,
the mapper's real output), weighted as audit traffic is (70% authentication...), each copy with its own
``metadata.uid`` and a ``time`` moving forward over 10 days (so files roll over ten ``eventDay`` folders). They come
in batches of 500 (one API page) and the sink is synced every 40 batches (20,000 events, the commit cadence of a
catch-up at ~10k events/s). Each sink runs in a fresh worker process, so ``ru_maxrss`` is that run's peak; the sink
time is the time spent in ``write`` + ``sync`` + ``close`` only (event generation excluded). Written into
bench/RESULTS.md, section "## Parquet sink".
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_pull import RESULTS, machine, machine_lines, table, write_section  # noqa: E402

HEADING = "## Parquet sink"
LIMIT_MIB = 200
BATCH = 500
SYNC_EVERY = 40
WEIGHTS = {"authentication": 70, "account_change": 16, "group_management": 12, "user_inventory": 2}
SPAN_MS = 10 * 86_400_000


def _templates() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((ROOT / "tests" / "golden").rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        expected = data.get("expected")
        if isinstance(expected, dict) and path.parent.name in WEIGHTS:
            found.setdefault(path.parent.name, []).append(expected)
    return found


def batches(total: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, events) in batches of BATCH, tables interleaved by weight, time moving forward."""
    templates = _templates()
    start = 1_780_000_000_000
    order = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
    made = 0
    turn = 0
    while made < total:
        name = order[turn % len(order)]
        turn += 1
        size = min(BATCH, total - made)
        events = []
        for index in range(size):
            event = copy.deepcopy(templates[name][(made + index) % len(templates[name])])
            event["time"] = start + (made + index) * SPAN_MS // total
            event["metadata"]["uid"] = f"bench-{made + index:08d}"
            events.append(event)
        made += size
        yield name, events


def worker(kind: str, total: int) -> dict[str, object]:
    from connector.events import Batch
    from connector.sinks.ndjson import NdjsonSink
    from connector.sinks.parquet import open_sink

    output = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    try:
        if kind == "parquet":
            sink: Any = open_sink(str(output), {"region": "us-east-1", "account_id": "123456789012"})
        else:
            sink = NdjsonSink(str(output), per_table=True)
        spent = 0.0
        count = 0
        for number, (name, events) in enumerate(batches(total), 1):
            started = time.perf_counter()
            sink.write(Batch(name, None, events, None))
            if number % SYNC_EVERY == 0:
                sink.sync()
            spent += time.perf_counter() - started
            count += len(events)
        started = time.perf_counter()
        sink.close()
        spent += time.perf_counter() - started
        files = [p for p in output.rglob("*") if p.is_file()]
        return {
            "events": count,
            "sink_s": spent,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
        }
    finally:
        shutil.rmtree(output, ignore_errors=True)


def run_worker(kind: str, total: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", kind, "--events", str(total)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--worker", choices=("parquet", "ndjson"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.events)))
        return 0
    info = machine()
    print(machine_lines(info), flush=True)
    results = {kind: run_worker(kind, args.events) for kind in ("ndjson", "parquet")}
    base = results["ndjson"]["sink_s"]
    headers = (
        "sink",
        "events",
        "sink s",
        "us per event",
        "x NDJSON",
        "peak RSS MiB",
        f"< {LIMIT_MIB} MiB",
        "files",
        "MiB",
    )
    rows = [
        [
            kind,
            f"{r['events']:,}",
            f"{r['sink_s']:.1f}",
            f"{r['sink_s'] / r['events'] * 1e6:.1f}",
            f"{r['sink_s'] / base:.2f}",
            f"{r['peak_mib']:.1f}",
            "yes" if r["peak_mib"] < LIMIT_MIB else "NO",
            r["files"],
            f"{r['bytes'] / 2**20:,.1f}",
        ]
        for kind, r in results.items()
    ]
    result = table(headers, rows)
    print(result)
    body = f"""
Reproduce with `.venv/bin/python bench/bench_parquet.py` (or `make bench`). {args.events:,} OCSF events (the golden
events of the four audit tables, each copy with its own uid and time, over 10 days) in batches of {BATCH}, synced
every {SYNC_EVERY} batches, each sink in a fresh process (`ru_maxrss` = its peak); "sink s" is the time inside
`write` + `sync` + `close` only. Parquet: Security Lake layout, zstd, default settings (`buffer_rows`
10,000). Measured on:

{machine_lines(info)}

{result}
"""
    if not args.no_write:
        write_section(HEADING, body)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0 if results["parquet"]["peak_mib"] < LIMIT_MIB else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
