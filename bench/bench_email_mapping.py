"""Throughput of the email-security path (SIEM records) against the audit path, each as a ratio to plain JSON.

Usage::

    .venv/bin/python bench/bench_email_mapping.py [--records N] [--runs N] [--no-write]

Builds ``--records`` SIEM records by cycling over the 65 real samples of ``tests/fixtures/streams/siem_cg.jsonl``
(every copy gets its own aggregateId, processingId, messageId, timestamp and recipient, so content keys and uids
differ), and as many audit records (``bench/common.py``), as JSON lines. Then, in the same process, interleaved,
best of ``--runs``:

* baseline: ``json.loads`` + ``json.dumps`` of every line;
* full path: ``orjson.loads`` → ``Transformer.email("siem", ...)`` (content key, map, validate) /
  ``Transformer.audit`` → ``orjson.dumps(event)``, as ``connector.cli map`` does it.

The figure of merit is full-path time over baseline time for the same records; issue 12 asks the SIEM ratio to
be no worse than audit's measured the same way in the same run (the script exits 1 otherwise). The table is
written into bench/RESULTS.md, section "Email mapping (SIEM)", between markers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from common import ROOT, best_of, generate_audit_lines, machine_description

from connector.errors import MappingError
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer

RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Email mapping (SIEM)"
BEGIN = "<!-- bench_email_mapping.py: begin generated table -->"
END = "<!-- bench_email_mapping.py: end generated table -->"
COLLECTED = 1_790_000_000_000


def siem_lines(count: int) -> list[bytes]:
    """``count`` SIEM records as JSON lines: the real samples, each copy made distinct."""
    samples = [
        json.loads(line)
        for line in (ROOT / "tests" / "fixtures" / "streams" / "siem_cg.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    lines = []
    for index in range(count):
        record = dict(samples[index % len(samples)])
        record["aggregateId"] = f"agg{index:09d}_1731621818"
        record["processingId"] = f"proc{index:09d}_1731621818"
        record["timestamp"] = 1731621865697 + index
        if "messageId" in record:
            record["messageId"] = f"<{index:x}-36579@hapi.b41.one>"
        for name in ("recipients", "recipient"):
            if name in record:
                record[name] = f"user{index % 5000}@demo-int.elastic.mime-api.com"
        lines.append(orjson.dumps(record))
    return lines


def baseline(lines: Sequence[bytes]) -> int:
    """Plain ``json`` round trip of every readable line (the audit generator writes a few broken ones)."""
    written = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        written += len(json.dumps(record))
    return written


def _decode(lines: Sequence[bytes]) -> Iterator[Any]:
    """Lines to records as ``connector.cli`` reads them: an unreadable line becomes a ``MappingError``."""
    for number, line in enumerate(lines, 1):
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield MappingError(f"line {number} is not valid JSON ({exc})", record_id=f"line {number}")


def full_siem(lines: Sequence[bytes]) -> int:
    transformer = Transformer(MAPPER, VALIDATOR)
    written = 0
    for mapped in transformer.email("siem", _decode(lines), COLLECTED):
        written += len(orjson.dumps(mapped.event))
    assert transformer.report.failures == 0, transformer.report.errors[:3]
    return written


def full_audit(lines: Sequence[bytes]) -> int:
    transformer = Transformer(MAPPER, VALIDATOR)
    written = 0
    for mapped in transformer.audit(_decode(lines)):
        written += len(orjson.dumps(mapped.event))
    return written


MAPPER = Mapper()
VALIDATOR = EventValidator()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the audit generator's broken records are refused, each with a warning
    siem, audit = siem_lines(args.records), generate_audit_lines(args.records)
    full_siem(siem[:1000])  # compile the tables and warm the memos before timing
    full_audit(audit[:1000])
    times = {name: float("inf") for name in ("siem_json", "siem_full", "audit_json", "audit_full")}
    for _ in range(args.runs):  # interleaved: a disturbance hits both sides alike
        times["siem_json"] = min(times["siem_json"], best_of(1, lambda: baseline(siem)))
        times["siem_full"] = min(times["siem_full"], best_of(1, lambda: full_siem(siem)))
        times["audit_json"] = min(times["audit_json"], best_of(1, lambda: baseline(audit)))
        times["audit_full"] = min(times["audit_full"], best_of(1, lambda: full_audit(audit)))
    siem_ratio = times["siem_full"] / times["siem_json"]
    audit_ratio = times["audit_full"] / times["audit_json"]
    met = siem_ratio <= audit_ratio
    machine = "; ".join(f"{k}: {v}" for k, v in machine_description().items())
    table = [
        f"Machine: {machine}.",
        "",
        f"Best of {args.runs} interleaved runs, {args.records:,} records each; ratio = full-path time / "
        "json loads+dumps time for the same records.",
        "",
        "| source | json loads+dumps rec/s | full path rec/s | µs per record (full) | full / json |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ratio in (("siem", siem_ratio), ("audit", audit_ratio)):
        plain, full = times[f"{name}_json"], times[f"{name}_full"]
        table.append(
            f"| {name} | {args.records / plain:,.0f} | {args.records / full:,.0f} | "
            f"{full / args.records * 1e6:.2f} | {ratio:.2f}x |"
        )
    table += ["", f"SIEM ratio {'≤' if met else '>'} audit ratio: target {'met' if met else 'NOT met'}."]
    text = "\n".join(table)
    print(text)
    if not args.no_write:
        _write(text)
    return 0 if met else 1


def _write(text: str) -> None:
    content = RESULTS.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in content and END in content:
        start, stop = content.index(BEGIN), content.index(END) + len(END)
        content = content[:start] + block + content[stop:]
    else:
        content = (
            content.rstrip("\n")
            + f"\n\n{HEADING}\n\nReproduce with `.venv/bin/python bench/bench_email_mapping.py`.\n\n{block}\n"
        )
    RESULTS.write_text(content, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
