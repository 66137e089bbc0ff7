"""eventInfo parsing on hostile texts: the time per KB stays flat from 1 KB to 1 MB, for every adversarial shape.

Usage::

    .venv/bin/python bench/bench_event_info.py [--max-kb 1024] [--no-write] [--reference]

Each shape is a layout's real prefix followed by a long run of what the previous patterns backtracked over
(whitespace, ``a@``, ``a.``, ``<``, `` by ``, ``{``, ``[``), or of IP labels. Two measurements, best of five, in
this process:

* the parser alone with the ``MAX_PARSED_CHARS`` cap lifted (so the whole text is parsed): microseconds per KB at
  1 KB ... 1 MB, and each size's figure as a ratio to the 1 KB figure of the same run; linear parsing means
  ratios near 1 (a quadratic parser would double them at each doubling of the size);
* the whole mapper as shipped (cap in place): microseconds per record at 1 KB and at the largest size, which stay
  bounded whatever the length.

``--reference`` also times the previous, backtracking parser (tests/reference_event_info.py) at 1, 2 and 4 KB
(it takes minutes beyond that) and prints it; the figures of that run are quoted in the notes below. Written into
bench/RESULTS.md, section "## eventInfo parsing".
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_pull import RESULTS, machine, machine_lines, table, write_section  # noqa: E402

from connector.mapping import event_info  # noqa: E402
from connector.mapping.mapper import Mapper  # noqa: E402

HEADING = "## eventInfo parsing"
# name -> (auditType, prefix, repeated unit, suffix)
SHAPES: dict[str, tuple[str, str, str, str]] = {
    "password reset + spaces": ("User Password Changed", "Password reset for user: a@b.example.com ", " ", "x"),
    "Action Performed + spaces": ("Folder Log Entry", "Action Performed - ", " ", "x"),
    "titled + tabs": ("Search Action", "Executed Search - ", "\t", "x"),
    "authentication + '<'": ("User Logged On", "Successful authentication for a@b.example.com ", "<", ""),
    "Action Performed + ' by '": ("Folder Log Entry", "Action Performed - ", " by ", ""),
    "Action Performed + ' by a<'": ("Folder Log Entry", "Action Performed - ", " by a<", ""),
    "member change + 'a@'": ("Folder Log Entry", "Action Performed - Added ", "a@", " by x@y.example<X>"),
    "first address + 'a.'": ("Folder Log Entry", "Action Performed - Added ", "a.", " by x@y.example<X>"),
    "Search Criteria + '{'": ("Search Action", "Executed Search - Source: Search, Search Criteria: ", "{", ""),
    "Search Criteria + '['": ("Search Action", 'Executed Search - Source: S, Search Criteria: {"a":', "[", ""),
    "labelled IP + 'ip '": ("Search Action", "Note ", "ip ", ""),
    "labelled IP + 'Source IP: 1'": ("Search Action", "Note ", "Source IP: 1 ", ""),
    "password reset + 'Remote IP is '": (
        "User Password Changed",
        "Password reset for user: a@b.c ",
        "Remote IP is ",
        "x",
    ),
    "mixed": ("Search Action", "Note ", " \t a@b.c <by {[ IP", ""),
}


def make_text(shape: str, size: int) -> str:
    """The shape's text, ``size`` characters long (the run fills what the prefix and suffix leave)."""
    _, prefix, unit, suffix = SHAPES[shape]
    run = unit * ((size - len(prefix) - len(suffix)) // len(unit) + 1)
    return prefix + run[: size - len(prefix) - len(suffix)] + suffix


def per_call(func: Callable[[], object], chars: int) -> float:
    """Best of five seconds per call; each timing repeats the call for at least ~2 MB of text."""
    repeat = max(1, (2 << 20) // chars)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            func()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


def parser_rows(sizes_kb: Sequence[int]) -> list[list[str]]:
    """Per shape: µs per KB at each size with the cap lifted, and the ratio to the 1 KB figure."""
    cap = event_info.MAX_PARSED_CHARS
    event_info.MAX_PARSED_CHARS = 1 << 30  # type: ignore[misc]  # parse all of it: the algorithm, not the cap
    rows = []
    try:
        for shape in SHAPES:
            figures = []
            for kb in sizes_kb:
                text = make_text(shape, kb * 1024)
                figures.append(per_call(lambda text=text: event_info.parse_event_info(text), len(text)) / kb * 1e6)
            rows.append([shape] + [f"{f:.2f} ({f / figures[0]:.2f}x)" for f in figures])
            print(" | ".join(rows[-1]), flush=True)
    finally:
        event_info.MAX_PARSED_CHARS = cap  # type: ignore[misc]
    return rows


def mapper_rows(sizes_kb: Sequence[int]) -> list[list[str]]:
    """Per shape: µs to map one whole record (cap in place) at the smallest and the largest size."""
    mapper = Mapper(clock_ms=lambda: 1_790_000_000_000, emit_other=True)
    rows = []
    for shape, (audit_type, *_) in SHAPES.items():
        cells = [shape]
        for kb in (sizes_kb[0], sizes_kb[-1]):
            record = {"id": "eNqBENCH", "auditType": audit_type, "category": "account_logs", "user": "",
                      "eventTime": "2026-05-01T08:30:00+0000", "eventInfo": make_text(shape, kb * 1024)}  # fmt: skip
            cells.append(f"{per_call(lambda record=record: mapper.map_audit(record, 1), 1 << 20) * 1e6:.0f}")
        rows.append(cells)
    return rows


def reference_rows() -> list[list[str]]:
    """The previous parser at 1, 2 and 4 KB (seconds per call, one call each: it is that slow)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import reference_event_info

    rows = []
    for shape in SHAPES:
        cells = [shape]
        for kb in (1, 2, 4):
            text = make_text(shape, kb * 1024)
            started = time.perf_counter()
            try:
                reference_event_info.parse_event_info(text)
            except RecursionError:  # deep Search Criteria JSON: the previous parser let it escape
                cells.append("RecursionError")
                continue
            cells.append(f"{time.perf_counter() - started:.3f}")
        rows.append(cells)
        print(" | ".join(cells), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print, and write the section of RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-kb", type=int, default=1024, help="largest text, KB (default 1024)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--reference", action="store_true", help="also time the previous parser (minutes)")
    args = parser.parse_args(argv)
    sizes = [kb for kb in (1, 4, 16, 64, 256, 1024) if kb <= args.max_kb]
    info = machine()
    parsed = table(["shape (µs per KB, ratio to 1 KB)"] + [f"{kb} KB" for kb in sizes], parser_rows(sizes))
    mapped = table(["shape", f"map one record, {sizes[0]} KB (µs)", f"{sizes[-1]} KB (µs)"], mapper_rows(sizes))
    print(parsed, mapped, sep="\n\n")
    if args.reference:
        print(table(["shape (previous parser, s per call)", "1 KB", "2 KB", "4 KB"], reference_rows()))
    body = f"""
Reproduce with `.venv/bin/python bench/bench_event_info.py` (or `make bench`). Each shape is a layout's real
prefix followed by a run of what the previous patterns backtracked over. First table: the parser alone with the
`MAX_PARSED_CHARS` cap lifted, so the whole text is parsed; µs per KB (best of five) and, in brackets, that
figure over the same shape's 1 KB figure in this run (flat = linear; a quadratic parser doubles the ratio at
every doubling of the size). Second table: `Mapper.map_audit` as shipped (the first {
        event_info.MAX_PARSED_CHARS // 1024
    } KB parsed, the whole text kept in `message`). Measured on:

{machine_lines(info)}

{parsed}

{mapped}
"""
    if not args.no_write:
        write_section(HEADING, body + _NOTES)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


_NOTES = """
### Reading the numbers

- Per-KB time is flat from 1 KB to 1 MB for every shape (ratios within noise of 1x; below 1x at the larger sizes,
  where the fixed per-call cost is spread over more text). With the cap, mapping a record costs the same at 1 MB
  as at 16 KB: the part past the cap is copied into `message`, never scanned for fields.
- The previous parser, measured once by hand (`--reference`, and through the mapper with
  `tests/reference_event_info.py` patched in) on the same machine: password reset + spaces 0.49 s at 1 KB,
  2.9 s at 2 KB, 22.7 s at 4 KB (cubic: x8 per doubling); Action Performed + spaces 0.38 / 2.7 / 20.4 s;
  titled + spaces 13 ms at 1 KB, 3.7 s at 16 KB, 139 s at 100 KB; member change `a@` 3.7 ms at 1 KB, 0.9 s at
  16 KB, 32.7 s at 100 KB; first address `a.` 1.6 ms, 0.37 s, 15.3 s; ` by a<` 1.7 ms, 0.38 s, 16.6 s. The linear
  parser maps each of these 100 KB records in under 1 ms.
"""

if __name__ == "__main__":
    sys.exit(main())
