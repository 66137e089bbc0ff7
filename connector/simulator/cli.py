"""Command line for the simulator: ``python -m connector.simulator --port 8080 --seed 1 --size small``.

``mimecast-connector simulate`` delegates here through :func:`main`.
"""

from __future__ import annotations

import argparse

from connector.simulator.faults import FaultPlan
from connector.simulator.server import ORDERS, serve
from connector.simulator.tenant import SIZE_PRESETS

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``simulate`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mimecast-connector simulate",
        description="Run an embedded Mimecast API 2.0 simulator on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=1, help="tenant seed (same seed, same data)")
    parser.add_argument("--size", choices=sorted(SIZE_PRESETS), default="small", help="tenant size preset")
    parser.add_argument("--client-id", default="simulator-client-id", help="accepted client id")
    parser.add_argument("--client-secret", default="simulator-client-secret", help="accepted client secret")
    parser.add_argument(
        "--future-days",
        type=float,
        default=0.0,
        help="days of the preset's history placed in the future, so records keep arriving while it runs",
    )
    parser.add_argument("--token-ttl", type=float, default=1799, help="expires_in of issued tokens (seconds)")
    parser.add_argument("--order", choices=ORDERS, default="newest_first", help="order of audit records")
    parser.add_argument("--quota", type=int, default=None, help="enforce at most N API requests per window")
    parser.add_argument("--quota-window", type=float, default=60.0, help="quota window in seconds")
    parser.add_argument("--lag-max", type=float, default=0.0, help="index lag: at most this many seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="fixed latency per request (s, work included)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; return the exit code."""
    args = build_parser().parse_args(argv)
    faults = FaultPlan(
        quota_limit=args.quota,
        quota_window_seconds=args.quota_window,
        lag_max_seconds=args.lag_max,
        latency_seconds=args.latency,
    )
    return serve(
        port=args.port,
        seed=args.seed,
        size_preset=args.size,
        host=args.host,
        client_id=args.client_id,
        client_secret=args.client_secret,
        future_days=args.future_days,
        token_ttl=args.token_ttl,
        order=args.order,
        faults=faults,
    )
