"""Throughput of the per-record path: raw JSON line → map → validate → serialized OCSF event.

Usage::

    .venv/bin/python bench/bench_mapping.py [--records N] [--users N] [--runs N] [--profile] [--no-write]

Generates deterministic audit records and directory users (``bench/common.py``) as JSON lines, then measures in
the same process, interleaved and best-of-``--runs``:

* baseline ``json``: ``json.loads`` + ``json.dumps`` of every line (the plain JSON round trip);
* baseline ``orjson``: ``orjson.loads`` + ``orjson.dumps`` of every line;
* full path: ``orjson.loads`` → ``Transformer.audit`` / ``.users`` (map + validate) → ``orjson.dumps(event)``,
  as ``connector.cli`` does it.

Rates are input records per second; ratios are full-path time over baseline time for the same records (the
issue's target: full path ≤ 5x the plain ``json`` round trip). A per-stage breakdown (decode, map, validate split
into jsonschema-rs and the semantic checks, encode) shows where the rest goes. The table and the machine
description are written into bench/RESULTS.md, section "Mapping, validation and serialization", between markers
(text around the markers is kept). ``--profile`` runs pyinstrument over the full audit path and prints the top.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from common import (
    ROOT,
    best_of,
    generate_audit_lines,
    generate_user_lines,
    machine_description,
)

from connector.errors import MappingError
from connector.mapping.event_info import parse_event_info
from connector.mapping.mapper import Mapper, now_ms
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.timefmt import parse_mimecast_time_ms

RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Mapping, validation and serialization"
BEGIN = "<!-- bench_mapping.py: begin generated table -->"
END = "<!-- bench_mapping.py: end generated table -->"
TARGET_RATIO = 5.0


def decode(lines: Iterable[bytes]) -> Iterator[Any]:
    """Lines to records the way ``connector.cli`` reads NDJSON: an unreadable line becomes a ``MappingError``."""
    for number, line in enumerate(lines, 1):
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield MappingError(f"line {number} is not valid JSON ({exc})", record_id=f"line {number}")


def baseline_json(lines: Sequence[bytes]) -> int:
    """Plain ``json`` round trip of every readable line; returns the bytes written."""
    written = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        written += len(json.dumps(record))
    return written


def baseline_orjson(lines: Sequence[bytes]) -> int:
    """``orjson`` round trip of every readable line; returns the bytes written."""
    written = 0
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        written += len(orjson.dumps(record))
    return written


def full_audit(lines: Sequence[bytes]) -> Transformer:
    """Decode, map, validate and encode every audit line; returns the transformer (its report has the counts)."""
    transformer = Transformer(Mapper(), VALIDATOR)
    dumps = orjson.dumps
    written = 0
    for mapped in transformer.audit(decode(lines), start=1):
        written += len(dumps(mapped.event))
    return transformer


def full_users(lines: Sequence[bytes]) -> Transformer:
    """Decode, map, validate and encode every directory-user line."""
    transformer = Transformer(Mapper(), VALIDATOR)
    dumps = orjson.dumps
    written = 0
    for mapped in transformer.users(decode(lines), now_ms(), start=1):
        written += len(dumps(mapped.event))
    return transformer


VALIDATOR = EventValidator()


@dataclass
class Measured:
    """Best-of-N seconds for one source."""

    source: str
    records: int
    emitted: int
    other: int
    refused: int
    json_s: float
    orjson_s: float
    full_s: float
    stages: dict[str, float]


def _interleaved(runs: int, jobs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best-of-``runs`` seconds per job, the jobs taking turns so a noisy neighbour hits them alike."""
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(runs):
        for name, job in jobs.items():
            best[name] = min(best[name], best_of(1, job))
    return best


def _parses(text: object) -> bool:
    try:
        return isinstance(text, str) and parse_mimecast_time_ms(text) > 0
    except ValueError:
        return False


def _stages(source: str, lines: Sequence[bytes], runs: int) -> dict[str, float]:
    """Seconds of each stage alone over the same lines (best of ``runs``)."""
    records = list(decode(lines))
    mapper = Mapper()
    collected = now_ms()
    mapped = []
    for position, record in enumerate(records, 1):
        try:
            if source == "audit":
                one = mapper.map_audit(record, position)
            else:
                one = mapper.map_user(record, position, collected)
        except MappingError:
            continue
        if one is not None:
            mapped.append(one)
    events = [m.event for m in mapped]
    fast = {uid: VALIDATOR._classes[uid].fast for uid in VALIDATOR._classes}  # the compiled jsonschema-rs validators

    def map_all() -> None:
        for position, record in enumerate(records, 1):
            try:
                if source == "audit":
                    mapper.map_audit(record, position)
                else:
                    mapper.map_user(record, position, collected)
            except MappingError:
                pass

    texts = [r["eventInfo"] for r in records if isinstance(r, dict) and isinstance(r.get("eventInfo"), str)]
    times = [r["eventTime"] for r in records if isinstance(r, dict) and _parses(r.get("eventTime"))]

    def parse_texts() -> None:
        for text in texts:
            parse_event_info(text)

    def parse_times() -> None:
        for text in times:
            parse_mimecast_time_ms(text)

    def schema_only() -> None:
        for event in events:
            fast[event["class_uid"]].is_valid(event)

    def validate_all() -> None:
        problems = VALIDATOR.problems
        for event in events:
            problems(event)

    def encode_all() -> None:
        dumps = orjson.dumps
        for event in events:
            dumps(event)

    return _interleaved(
        runs,
        {
            "decode (orjson.loads)": lambda: list(decode(lines)),
            "map (Mapper)": map_all,
            "  of which eventInfo parsing (parse_event_info)": parse_texts,
            "  of which eventTime parsing (timefmt.parse_mimecast_time_ms)": parse_times,
            "validate (EventValidator.problems)": validate_all,
            "  of which jsonschema-rs is_valid": schema_only,
            "encode (orjson.dumps event)": encode_all,
        },
    )


def measure(source: str, lines: Sequence[bytes], runs: int) -> Measured:
    """Baselines and full path, interleaved, best of ``runs``; then the per-stage breakdown."""
    full = full_audit if source == "audit" else full_users
    best = _interleaved(
        runs,
        {"json": lambda: baseline_json(lines), "orjson": lambda: baseline_orjson(lines), "full": lambda: full(lines)},
    )
    report = full(lines).report
    return Measured(
        source=source,
        records=len(lines),
        emitted=sum(report.emitted.values()),
        other=sum(report.other_types.values()),
        refused=report.failures,
        json_s=best["json"],
        orjson_s=best["orjson"],
        full_s=best["full"],
        stages=_stages(source, lines, runs),
    )


def _per_record(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:.2f}" if seconds > 1e-4 else "n/a"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


def render(results: Sequence[Measured], runs: int) -> str:
    """Markdown: the machine, the main table and the stage breakdown."""
    machine = machine_description()
    out = ["Machine: " + "; ".join(f"{key}: {value}" for key, value in machine.items()) + ".", ""]
    out.append(f"Best of {runs} interleaved runs; rates are input records/s on one core; ratio = full-path time / "
               "baseline time for the same records.")  # fmt: skip
    out += [
        "",
        "| source | records | emitted / other type / refused | json loads+dumps rec/s | orjson loads+dumps rec/s "
        "| full path rec/s | full / json | full / orjson | target full / json ≤ 5 |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in results:
        ratio = m.full_s / m.json_s
        out.append(
            f"| {m.source} | {m.records:,} | {m.emitted:,} / {m.other:,} / {m.refused:,} "
            f"| {_rate(m.records, m.json_s)} "
            f"| {_rate(m.records, m.orjson_s)} | {_rate(m.records, m.full_s)} | {ratio:.2f}x "
            f"| {m.full_s / m.orjson_s:.2f}x | {'met' if ratio <= TARGET_RATIO else 'not met'} |"
        )
    out += ["", "Stages alone over the same records (µs per record, best of runs):", ""]
    names = list(results[0].stages)
    out.append("| stage | " + " | ".join(m.source for m in results) + " |")
    out.append("|---|" + "---:|" * len(results))
    for name in names:
        cells = " | ".join(_per_record(m.stages[name], m.records) for m in results)
        out.append(f"| {name} | {cells} |")
    cells = " | ".join(f"{m.full_s / m.records * 1e6:.2f}" for m in results)
    out.append(f"| full path (as above) | {cells} |")
    cells = " | ".join(f"{m.json_s / m.records * 1e6:.2f}" for m in results)
    out.append(f"| json loads+dumps baseline | {cells} |")
    return "\n".join(out)


def write_results(table: str) -> None:
    """Put ``table`` between the markers of our section of RESULTS.md, creating the file or section if needed."""
    block = f"{BEGIN}\n{table}\n{END}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    elif HEADING in text:
        head, rest = text.split(HEADING, 1)
        following = rest.find("\n## ")
        body, tail = (rest, "") if following < 0 else (rest[:following], rest[following:])
        text = f"{head}{HEADING}{body.rstrip()}\n\n{block}\n{tail}"
    else:
        command = "`.venv/bin/python bench/bench_mapping.py` (add `--profile` for a pyinstrument profile)"
        text = f"{text.rstrip()}\n\n{HEADING}\n\nReproduce with {command}.\n\n{block}\n"
    RESULTS.write_text(text, encoding="utf-8")


def profile(lines: Sequence[bytes]) -> None:
    """pyinstrument over the full audit path; prints the call tree (trimmed) and the top functions by own time."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    full_audit(lines)
    profiler.stop()
    tree = profiler.output_text(unicode=True, color=False)
    print("\n".join(tree.splitlines()[:70]))
    flat = profiler.output_text(unicode=True, color=False, flat=True)
    print("\n".join(flat.splitlines()[:40]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="audit records (default 200000)")
    parser.add_argument("--users", type=int, default=50_000, help="directory users (default 50000)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many interleaved runs (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile the full audit path with pyinstrument")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    # Refused records log a warning each; keep them off the terminal (they are counted in the report).
    logging.getLogger("connector").addHandler(logging.NullHandler())
    logging.getLogger("connector").propagate = False

    started = time.perf_counter()
    audit_lines = generate_audit_lines(args.records)
    user_lines = generate_user_lines(args.users)
    print(f"generated {len(audit_lines):,} audit and {len(user_lines):,} user lines "
          f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
    if args.profile:
        profile(audit_lines[: min(len(audit_lines), 50_000)])
        return 0
    results = [measure("audit", audit_lines, args.runs)]
    if user_lines:
        results.append(measure("users", user_lines, args.runs))
    table = render(results, args.runs)
    print(table)
    if not args.no_write:
        write_results(table)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
