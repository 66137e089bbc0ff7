"""A hostile Mimecast API at the real default caps: what each attack costs the connector in time and memory.

Usage::

    .venv/bin/python bench/bench_hostile.py [--only NAME ...] [--no-write]

The server is tests/hostile_server.py, run in this process on 127.0.0.1; each scenario's client runs in a fresh
subprocess (``--child``), so its peak RSS (``VmHWM`` of /proc/self/status, reported by the child) is that
scenario's alone. The client is a ``MimecastClient`` with its defaults (caps ``MAX_WIRE_BYTES``,
``MAX_BODY_BYTES``, ``MAX_TOKEN_BYTES``, page size 500, 5 attempts) except that backoff sleeps are skipped, so the
seconds are the requests' own. Logging goes through ``configure_logging`` with the client secret registered, as
the host does, into a buffer the child searches. The baseline row is a normal 500-record page with the same
setup: read the other rows as ratios to it.

Written into bench/RESULTS.md, section "## Hostile server".
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_pull import machine, machine_lines, table, write_section  # noqa: E402

HEADING = "## Hostile server"
CLIENT_ID = "bench-client-id"
CLIENT_SECRET = "bench-Secret-Value-9f3b2c71"
ACCESS_TOKEN = "hostile-token-0123456789"  # what tests/hostile_server.py hands out
CONTROL_MESSAGE = "\x1b[31mred\x1b[0m\nerror: forged second line\r"
MB = 1_000_000

# name -> (server mode, server config, request timeout in seconds or None for the default, what it is)
SCENARIOS: dict[str, tuple[str, dict[str, Any], float | None, str]] = {
    "baseline": ("oversized_page", {"records": 500}, None, "a normal page of 500 records"),
    "gzip bomb": ("gzip_bomb", {"size": 2000 * MB}, None, "~2 MB of gzip inflating to 2 GB"),
    "huge body": ("huge", {"size": 300 * MB}, None, "300 MB identity body, chunked"),
    "oversized page": ("oversized_page", {"records": 1_000_000}, None, "1,000,000 records, pageSize ignored"),
    "body slowloris": ("slowloris", {"interval": 1.0, "max_seconds": 60}, 2.0, "body at 1 byte/s, timeout 2 s"),
    "header slowloris": (
        "header_slowloris",
        {"interval": 1.0, "max_seconds": 60},
        2.0,
        "headers at 1 byte/s, timeout 2 s",
    ),
    "secret echo": ("echo_error", {}, None, "HTTP 500 echoing the access token and client secret"),
    "token cycle": ("cycling_token", {"records": 500}, None, "next token A, B, A... on full pages"),
    "control chars": ("control_error", {"message": CONTROL_MESSAGE}, None, "ANSI escape + newline in fail[]"),
}


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, url: str) -> int:
    """Run one scenario's pull against ``url``; print one JSON line with its outcome."""
    import httpx

    from connector.api.auth import MimecastAuth
    from connector.api.client import MimecastClient
    from connector.api.ratelimit import RetryPolicy
    from connector.log import configure_logging, escape_control, safe_line
    from connector.secret import Secret
    from connector.streams.audit import AUDIT

    log = io.StringIO()
    configure_logging("DEBUG", stream=log, secrets=[CLIENT_SECRET])
    _, _, seconds, _ = SCENARIOS[name]
    client = MimecastClient(
        url,
        MimecastAuth(f"{url}/oauth/token", CLIENT_ID, Secret(CLIENT_SECRET)),
        retry=RetryPolicy(),
        sleep=lambda _seconds: None,
        timeout=httpx.Timeout(seconds) if seconds is not None else None,
    )
    end = datetime(2026, 3, 2, tzinfo=UTC)
    started = time.perf_counter()
    records = 0
    error: BaseException | None = None
    try:
        with client:
            for page in client.pages([AUDIT.probe(int(end.timestamp() * 1000))], event_type="audit"):
                records += len(page.records)
    except Exception as exc:  # the outcome is what is measured
        error = exc
    elapsed = time.perf_counter() - started
    text = str(error) if error is not None else ""
    line = safe_line(f"error: {text}") if error is not None else ""
    logged = log.getvalue()
    result = {
        # Control characters escaped so the table stays printable; secrets NOT masked, to show what str() holds.
        "outcome": escape_control(f"{type(error).__name__}: {text[:100]}") if error else f"ok, {records} records",
        "seconds": elapsed,
        "rss_mb": _vm_hwm_mb(),
        "secret_in_error": CLIENT_SECRET in text,
        "token_in_error": ACCESS_TOKEN in text,
        "secret_in_line": CLIENT_SECRET in line or ACCESS_TOKEN in line,
        "secret_in_log": CLIENT_SECRET in logged or ACCESS_TOKEN in logged,
        "control_in_line": any(ch in line for ch in "\x1b\n\r"),
        "line": line[:200],
    }
    print(json.dumps(result))
    return 0


def run(name: str) -> dict[str, Any]:
    """Serve ``name``'s mode here and run its client in a fresh subprocess."""
    from hostile_server import HostileServer

    mode, config, _, _ = SCENARIOS[name]
    with HostileServer(mode, **config) as server:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", name, server.url]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
        requests = [path for path in server.requests if not path.endswith("/oauth/token")]
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{name}: child failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["requests"] = len(requests)
    return result


def checks(name: str, result: dict[str, Any]) -> str:
    """The scenario-specific check, as a short verdict."""
    if name == "secret echo":
        raw = [what for key, what in (("token_in_error", "token"), ("secret_in_error", "secret")) if result[key]]
        shown = "masked" if not result["secret_in_line"] else "LEAK"
        logged = "masked" if not result["secret_in_log"] else "LEAK"
        held = " + ".join(raw) + " present" if raw else "clean"
        return f"str(error): {held}; error line: {shown}; log: {logged}"
    if name == "control chars":
        return "escaped in error line" if not result["control_in_line"] else "NOT ESCAPED"
    if result["secret_in_log"]:
        return "LEAK: secret in log"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario, print the table, and write the section of RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    info = machine()
    rows = []
    base: dict[str, Any] | None = None
    lines: dict[str, str] = {}
    for name in SCENARIOS:
        if args.only and name not in args.only and name != "baseline":
            continue
        result = run(name)
        base = base or result
        lines[name] = result["line"]
        outcome = result["outcome"].replace("|", "\\|").replace("\n", "\\n")
        rows.append(
            [
                name,
                SCENARIOS[name][3],
                f"`{outcome}`",
                result["requests"],
                f"{result['seconds']:.2f}",
                f"{result['rss_mb']:.0f} ({result['rss_mb'] / base['rss_mb']:.2f}x)",
                checks(name, result),
            ]
        )
        print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    headers = ["scenario", "server", "outcome (first 100 chars)", "API requests", "seconds", "peak RSS MB", "check"]
    result_table = table(headers, rows)
    print(result_table)
    body = f"""
Reproduce with `.venv/bin/python bench/bench_hostile.py` (or `make bench`). The server is
`tests/hostile_server.py` on 127.0.0.1, in the benchmark's process; each scenario's client runs in a fresh
subprocess with `MimecastClient`'s defaults (16 MiB on the wire, 64 MiB inflated, 64 KiB token, page size 500,
5 attempts, deadline = read timeout, 30 s unless stated) but no backoff sleeps, so seconds are the requests' own.
Peak RSS is the child's `VmHWM` (interpreter and imports included); the ratio is to the baseline row, a normal
500-record page. The secret-echo and control-character checks look at `str(error)`, the `error:` line as
`connector.log.safe_line` prints it, and the JSON log (`configure_logging`, client secret registered as the host
does). Measured on:

{machine_lines(info)}

{result_table}
"""
    if "control chars" in lines:
        body += f"\nThe control-character error as printed: `{lines['control chars']}`\n"
    body += _NOTES
    if not args.no_write:
        write_section(HEADING, body)
        print("written to bench/RESULTS.md")
    return 0


_NOTES = """
### Reading the numbers

- Size caps hold at the real defaults: the gzip bomb stops at 64 MiB inflated, the huge body at 16 MiB on the
  wire, each after one request (not retried).
- The oversized page is refused by record count only after the whole page was parsed: 1,000,000 small records
  fit in about 11 MB, under the 16 MiB wire cap, and become a million dicts before the count check; that is
  the largest peak of the table.
- Both slowloris variants end each attempt at the 2 s deadline (5 attempts, about 10 s). The header phase is
  bounded by the socket-level deadline (`_DeadlineBackend` in connector/transport.py); before it, a server
  trickling headers held each attempt for as long as it kept sending (httpx's read timeout restarts with every
  byte).
- Secret echo: the exception's own text (`str(error)`), the `error:` line printed through `safe_line` and the
  JSON log all mask the echoed token and secret (server text is redacted when the error is built).
"""

if __name__ == "__main__":
    sys.exit(main())
