"""``make demo``: the connector end to end against the embedded Mimecast simulator, in well under a minute.

What it does:

1. starts the simulator (``small`` tenant: 200 users, 20 groups, 7 days of audit events) on 127.0.0.1, on a free
   port, in a background thread of this process;
2. writes ``demo-output/config.json`` from ``demo/config.json`` with the simulator's URL, and passes the
   simulator's public demo secret through ``MIMECAST_CLIENT_SECRET`` (never through a file);
3. runs ``mimecast-connector check`` and then ``mimecast-connector run`` exactly as a user would (the real CLI in a
   subprocess: the same collection, sink and checkpoint code, nothing re-implemented here);
4. changes some group memberships in the simulator and runs ``mimecast-connector run`` again from the committed
   checkpoint, so ``group_management.ndjson`` also holds Add User / Remove User events from the inventory diff;
5. validates every output line with ``connector.ocsf.validate.EventValidator`` and exits non-zero, loudly, if any line
   is invalid, a table is missing, a run failed, or the diff events do not match the membership changes.

Outputs (``demo-output/``): ``authentication.ndjson``, ``account_change.ndjson``, ``group_management.ndjson``,
``user_inventory.ndjson``, ``summary.txt`` (both runs' summaries) and ``state/checkpoint.json``.

The TTP URL / Attachment / Impersonation Protect and DLP streams are collected in the same runs (``demo/config.json``
selects them) into ``email_url_activity.ndjson``, ``email_file_activity.ndjson``, ``detection_finding.ndjson`` and
``data_security_finding.ndjson``, validated like the others; their counts are printed at the end.

``parquet/``: the same events in the Amazon Security Lake layout, written by the same runs (``--output
parquet:DIR``, ``connector.sinks.parquet``) and counted back per table with DuckDB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout even when the package is not installed

from connector.config import CLIENT_SECRET_ENV  # noqa: E402
from connector.ocsf.validate import EventValidator  # noqa: E402
from connector.simulator import SIZE_PRESETS, MembershipChanges, SiemSpec, Simulator  # noqa: E402

DEMO_CONFIG: Final = ROOT / "demo" / "config.json"
OUT: Final = ROOT / "demo-output"
STATE: Final = OUT / "state" / "checkpoint.json"
TABLES: Final = ("authentication", "account_change", "group_management", "user_inventory")
# The TTP URL / Attachment / Impersonation Protect and DLP streams (docs/ttp-dlp.md): their tables, and the
# simulator's logs they are collected from.
TTP_TABLES: Final = {"ttp_url": "email_url_activity", "ttp_attachment": "email_file_activity",
                     "ttp_impersonation": "detection_finding", "dlp": "data_security_finding"}  # fmt: skip
# SIEM logs (issue 12): 200 records of each of the ten log types over 7 days, collected in batch mode
SIEM_TABLES: Final = ("email_activity", "email_file_activity", "email_url_activity", "detection_finding")
SIEM_RECORDS: Final = 200
EMAIL_TABLES: Final = tuple(dict.fromkeys([*TTP_TABLES.values(), *SIEM_TABLES]))  # the two share three tables
DIRECTORY_FEATURE: Final = "User and Group Management"  # metadata.product.feature.name of inventory-diff events
MUTATION_SEED: Final = 1
MUTATIONS: Final = 12
PARQUET: Final = OUT / "parquet"  # the Amazon Security Lake layout of the same events (connector.sinks.parquet)
PARQUET_SETTINGS: Final = {"region": "us-east-1", "account_id": "123456789012"}  # the config's outputs.parquet


class DemoError(Exception):
    """The demo did not produce what it promises; the message says what went wrong."""


def _connector(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``mimecast-connector ARGS`` (as ``python -m connector``); return its exit code and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "connector", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


def _summary_part(stderr: str) -> str:
    """The human run summary from the CLI's stderr (JSON log lines before it are left out)."""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("run summary:"):
            return "\n".join(lines[index:])
    return stderr.strip()


def _run(label: str, config: Path, env: dict[str, str], summaries: list[str]) -> None:
    args = ["run", "--config", str(config), "--state", str(STATE), "--output-dir", str(OUT),
            "--output", f"parquet:{PARQUET}"]  # fmt: skip
    started = time.monotonic()
    code, stderr = _connector(args, env)
    summary = _summary_part(stderr)
    summaries.append(f"== {label}: mimecast-connector {' '.join(args)}\n== exit code {code}, "
                     f"{time.monotonic() - started:.1f} s\n{summary}\n")  # fmt: skip
    print(f"{label}: exit code {code} in {time.monotonic() - started:.1f} s")
    print("  " + summary.replace("\n", "\n  "))
    if code != 0:
        raise DemoError(f"{label} exited with {code}:\n{stderr}")


def _validate(validator: EventValidator) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Validate every line of the four tables; return counts per table and the group_management events."""
    counts: Counter[str] = Counter()
    invalid: list[str] = []
    groups: list[dict[str, Any]] = []
    for table in (*TABLES, *EMAIL_TABLES):
        path = OUT / f"{table}.ndjson"
        if not path.is_file():
            raise DemoError(f"{path} was not written")
        with path.open("rb") as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                counts[table] += 1
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as exc:
                    invalid.append(f"{path.name}:{number}: not JSON ({exc})")
                    continue
                problems = validator.problems(event)
                invalid.extend(f"{path.name}:{number}: {problem}" for problem in problems)
                if table == "group_management":
                    groups.append(event)
    if invalid:
        shown = "\n  ".join(invalid[:20])
        raise DemoError(f"{len(invalid)} problems in the output (first 20):\n  {shown}")
    return counts, groups


def _check_diff(groups: list[dict[str, Any]], changes: MembershipChanges) -> tuple[int, int]:
    """The inventory-diff events must be exactly the memberships the simulator added and removed."""
    added = set(changes.added) - set(changes.removed)
    removed = set(changes.removed) - set(changes.added)
    seen_added: set[tuple[str, str]] = set()
    seen_removed: set[tuple[str, str]] = set()
    for event in groups:
        if event.get("metadata", {}).get("product", {}).get("feature", {}).get("name") != DIRECTORY_FEATURE:
            continue  # a Group Management event from the audit log
        user = event.get("user", {})
        pair = (event["group"]["uid"], str(user.get("email_addr") or user.get("uid") or user.get("name")).lower())
        (seen_added if event["activity_id"] == 3 else seen_removed).add(pair)
    expected_added = {(gid, address.lower()) for gid, address in added}
    expected_removed = {(gid, address.lower()) for gid, address in removed}
    if seen_added != expected_added or seen_removed != expected_removed:
        raise DemoError(
            "inventory-diff events do not match the membership changes:\n"
            f"  expected Add User {sorted(expected_added)}\n  got {sorted(seen_added)}\n"
            f"  expected Remove User {sorted(expected_removed)}\n  got {sorted(seen_removed)}"
        )
    return len(seen_added), len(seen_removed)


def _parquet(counts: Counter[str]) -> list[tuple[str, int, int]]:
    """Count the Security Lake Parquet layout both runs wrote (``--output parquet:DIR``) back with DuckDB.

    Returns (source, files, rows) per custom source; a count that differs from the NDJSON's is a DemoError.
    """
    import duckdb

    from connector.sinks.parquet import default_source_name

    found = duckdb.sql(
        "SELECT regexp_extract(filename, '/ext/([^/]+)/', 1) AS source, count(DISTINCT filename), count(*) "
        f"FROM read_parquet('{PARQUET}/**/*.parquet', hive_partitioning=true, filename=true, union_by_name=true) "
        "GROUP BY source ORDER BY source"
    ).fetchall()
    rows = {source: count for source, _, count in found}
    expected = {default_source_name(table): count for table, count in counts.items() if count}
    if rows != expected:
        raise DemoError(f"the Parquet layout holds {rows}, the NDJSON tables {expected}")
    if list(PARQUET.rglob("*.tmp")):
        raise DemoError(f"{PARQUET} holds parts that were never published")
    return [(str(source), int(files), int(count)) for source, files, count in found]


def main() -> int:
    """Run the demo; 0 when every promise held, 1 (with the reason on stderr) otherwise."""
    started = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)  # the demo's own output folder: start clean (the sink appends)
    (OUT / "state").mkdir(parents=True)
    validator = EventValidator()
    simulator = Simulator(SIZE_PRESETS["small"], siem=SiemSpec(records_per_type=SIEM_RECORDS))
    simulator.start()
    try:
        parameters = json.loads(DEMO_CONFIG.read_text())
        parameters["api_base_url"] = simulator.base_url
        parameters["outputs"] = {"parquet": PARQUET_SETTINGS}
        config = OUT / "config.json"
        config.write_text(json.dumps(parameters, indent=2) + "\n")
        env = {**os.environ, CLIENT_SECRET_ENV: simulator.client_secret}
        print(f"simulator: {simulator.base_url} (small tenant, 7 days of audit events); config: {config}")

        summaries: list[str] = []
        code, stderr = _connector(["check", "--config", str(config)], env)
        print(f"check: exit code {code}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}")
        summaries.append(f"== check: exit code {code}\n{stderr.strip()}\n")
        if code != 0:
            raise DemoError(f"check exited with {code}:\n{stderr}")

        _run("run 1 (first run, no checkpoint)", config, env, summaries)
        changes = simulator.mutate_memberships(MUTATION_SEED, MUTATIONS)
        print(f"simulator: {len(changes.added)} members added to and {len(changes.removed)} removed from groups")
        _run("run 2 (from the checkpoint, after the membership changes)", config, env, summaries)
        (OUT / "summary.txt").write_text("\n".join(summaries))

        counts, groups = _validate(validator)
        adds, removes = _check_diff(groups, changes)
        lake = _parquet(counts)
        if not STATE.is_file():
            raise DemoError(f"{STATE} was not written")
        served = sum(1 for _ in simulator.served_audit_ids())
        ttp_served = dict(simulator.ttp.served)
        leaked = [p.name for p in OUT.rglob("*") if p.is_file() and simulator.client_secret.encode() in p.read_bytes()]
        if leaked:
            raise DemoError(f"the client secret was written to {', '.join(leaked)}")
    finally:
        simulator.stop()

    total = sum(counts.values())
    print(f"\nall {total} events valid OCSF 1.8.0 ({served} audit records served by the simulator); files:")
    for table in (*TABLES, *EMAIL_TABLES):
        print(f"  {OUT / (table + '.ndjson')}: {counts[table]} events")
    print(f"  (group_management includes {adds} Add User and {removes} Remove User events from the inventory diff)")
    print("  SIEM records per log type (run 1; into email_activity, email_file_activity, email_url_activity and")
    print("  detection_finding):")
    for line in summaries[1].splitlines():
        if line.startswith("  siem ") and " files, " in line:
            print(f"  {line}")
    print("  TTP and DLP records served by the simulator (overlap re-reads included):")
    for stream, table in TTP_TABLES.items():
        print(f"    {stream} -> {table}: {ttp_served.get(stream, 0)} records")
    print(f"  {OUT / 'summary.txt'}: the run summaries")
    print(f"  {PARQUET}/ext/<source>/region=us-east-1/accountId=123456789012/eventDay=<YYYYMMDD>/<uuid>.parquet")
    print("    (the Amazon Security Lake layout; counted back with DuckDB read_parquet):")
    for source, files, rows in lake:
        print(f"    {source}: {rows} rows in {files} files")
    print(f"  {STATE}: the committed checkpoint")
    print(f"demo finished in {time.monotonic() - started:.1f} s\n")
    print("Against a real tenant (an API 2.0 application with Audit Events and User and Group Management):")
    print('  echo \'{"client_key": "<client id>"}\' > my.json  # api_base_url defaults to the global host')
    print(f"  export {CLIENT_SECRET_ENV}='<client secret>'  # read from the environment, never from a file")
    print("  mimecast-connector check --config my.json")
    print("  mimecast-connector run --config my.json --output-dir out")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoError as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
