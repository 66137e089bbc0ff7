"""A real version-1 checkpoint, written by the connector before checkpoints were per stream, continues with today's
code: no event delivered twice, none lost, the cursor and the membership snapshot carried over.

The fixture (tests/fixtures/checkpoint-v1/, written by its generate.py at commit 8530881) is one run against a
simulated tenant at NOW; here the same tenant is rebuilt, the clock moves on two hours, and today's code runs from
that checkpoint as a host would.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from connector.host import MimecastConnector
from connector.mapping.values.common import record_uid
from connector.simulator.faults import FaultPlan
from connector.simulator.server import Simulator
from connector.simulator.tenant import TenantSpec
from connector.store import CheckpointStore

FIXTURE = Path(__file__).parent / "fixtures" / "checkpoint-v1"
# The generator's tenant and clock (tests/fixtures/checkpoint-v1/generate.py).
NOW = 1_781_524_800  # 2026-06-15T12:00:00Z
SPEC = TenantSpec(seed=23, users=30, groups=5, domains=2, audit_events_per_day=600, days=1.0, end=NOW + 6 * 3600)
LAG_MAX = 20 * 60
LATER = NOW + 2 * 3600
SECRET = "v1-client-secret-0123456789"
DIRECTORY = "User and Group Management"  # metadata.product.feature.name of directory-derived events


def run_from(state: Path, sim: Simulator, now: int) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """One pass from the checkpoint in ``state`` at ``now`` (epoch s): the uids delivered per table, and the
    membership changes (Group Management events from the directory diff)."""
    store = CheckpointStore(state)
    parameters = {
        "api_base_url": sim.base_url,
        "client_key": "v1-client",
        "client_secret": SECRET,
        "initial_lookback_hours": 24,
        "overlap_minutes": 30,
        "page_size": 50,
        "emit_other_audit_types": True,
        "inventory_interval_minutes": 0,
    }
    delivered: dict[str, list[str]] = defaultdict(list)
    diff: list[dict[str, Any]] = []
    with MimecastConnector(parameters, environ={}, now_ms=lambda: now * 1000) as connector:
        for batch in connector.collect(store.load()):
            if batch.table is not None:
                delivered[batch.table].extend(event["metadata"]["uid"] for event in batch.events)
                if batch.table == "group_management":
                    diff.extend(e for e in batch.events if e["metadata"]["product"]["feature"]["name"] == DIRECTORY)
            if batch.checkpoint is not None:
                store.save(batch.checkpoint)
        assert connector.summary.ok, connector.summary.lines()
    return delivered, diff


@pytest.fixture
def continued(tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]], Any, list[dict[str, Any]], Path]:
    state = tmp_path / "checkpoint.json"
    shutil.copy(FIXTURE / "checkpoint.json", state)
    assert json.loads(state.read_text())["version"] == 1
    before = json.loads((FIXTURE / "delivered.json").read_text())
    clock = {"now": float(LATER)}
    sim = Simulator(
        SPEC,
        client_id="v1-client",
        client_secret=SECRET,
        clock=lambda: clock["now"],
        faults=FaultPlan(lag_max_seconds=LAG_MAX, lag_fraction=0.3),
    )
    with sim:
        changes = sim.mutate_memberships(seed=5, changes=6)
        after, diff = run_from(state, sim, LATER)
    return before, after, changes, diff, state


def test_nothing_delivered_before_the_migration_is_delivered_again(continued: Any) -> None:
    before, after, _, _, _ = continued
    for table in ("authentication", "account_change", "group_management", "base_event"):
        assert not set(before.get(table, ())) & set(after.get(table, ())), table
    assert sum(len(after[t]) for t in after if t != "user_inventory") > 0  # the run did collect new records


def test_nothing_is_lost_across_the_migration(continued: Any) -> None:
    """Every audit record visible by the second run (older than LATER - the longest lag) is in one of the two."""
    before, after, _, _, _ = continued
    tenant = Simulator(SPEC, clock=lambda: float(LATER)).tenant
    audit_tables = ("authentication", "account_change", "group_management", "base_event")
    delivered = {uid for run in (before, after) for table in audit_tables for uid in run.get(table, ())}
    settled = tenant.first_index_at_or_after(LATER - LAG_MAX)
    expected = {record_uid("audit", tenant.audit_id(index)) for index in range(settled)}
    assert expected and expected <= delivered


def test_the_membership_snapshot_carried_over_and_only_the_changes_are_reported(continued: Any) -> None:
    """With the snapshot lost, the diff would be empty (no baseline) or every member an addition."""
    _, _, changes, diff, state = continued
    reported = {(e["group"]["uid"], e["user"]["uid"], e["activity_id"]) for e in diff}
    added, removed = set(changes.added), set(changes.removed)  # a member added and removed again is no change
    expected = {(g, m.lower(), 3) for g, m in added - removed} | {(g, m.lower(), 4) for g, m in removed - added}
    assert expected and reported == expected
    stored = json.loads(state.read_text())
    assert stored["version"] == 2
    assert set(stored["streams"]) == {"audit", "user_management"}
    assert stored["streams"]["audit"]["cursor_ms"] == LATER * 1000
