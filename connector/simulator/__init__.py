"""An embedded Mimecast API 2.0 simulator for tests, benchmarks and demos (or, with :class:`ApiV1Keys`, an API 1.0
host that checks request signatures).

It serves a seeded, deterministic tenant (:class:`TenantSpec`, :class:`Tenant`) over real HTTP on 127.0.0.1
(:class:`Simulator`), injects faults on demand (:class:`FaultPlan`) and records what it served. It imports
nothing from the rest of ``connector``, so the client under test cannot share a bug with it.
"""

from __future__ import annotations

from connector.simulator.api_v1 import ApiV1Keys
from connector.simulator.faults import MALFORMED_KINDS, FaultPlan
from connector.simulator.layouts import LAYOUTS, Layout
from connector.simulator.server import ORDERS, Counters, Reply, RequestRecord, Simulator, serve
from connector.simulator.siem import SIEM_BATCH_PATH, SIEM_STREAM_PATH, SiemCounters, SiemService
from connector.simulator.siem_data import SIEM_TYPES, SiemFile, SiemSpec
from connector.simulator.tenant import (
    SIZE_PRESETS,
    Group,
    Member,
    MembershipChanges,
    Tenant,
    TenantSpec,
    User,
)

__all__ = [
    "LAYOUTS",
    "MALFORMED_KINDS",
    "ORDERS",
    "SIEM_BATCH_PATH",
    "SIEM_STREAM_PATH",
    "SIEM_TYPES",
    "SIZE_PRESETS",
    "ApiV1Keys",
    "Counters",
    "FaultPlan",
    "Group",
    "Layout",
    "Member",
    "MembershipChanges",
    "Reply",
    "RequestRecord",
    "SiemCounters",
    "SiemFile",
    "SiemService",
    "SiemSpec",
    "Simulator",
    "Tenant",
    "TenantSpec",
    "User",
    "serve",
]
