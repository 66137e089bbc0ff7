"""Command line for the simulator: ``python -m connector.simulator --port 8080 --seed 1 --size small``.

``mimecast-connector simulate`` delegates here through :func:`main`.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
import time
from collections.abc import Callable

from connector.simulator.api_v1 import ApiV1Keys
from connector.simulator.faults import FaultPlan
from connector.simulator.server import ORDERS, serve
from connector.simulator.siem_data import SiemSpec
from connector.simulator.tenant import SIZE_PRESETS

__all__ = ["build_parser", "main"]


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    """An argparse type: ``kind(text)``, finite and within ``[low, high]``, else a usage error (exit 2)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not between {low:g} and {high:g}")
        return value

    return parse


def _loopback(text: str) -> str:
    """An argparse type for ``--host``: a loopback address only. The simulator accepts fixed, published
    credentials and serves made-up tenant data; it has no business on a reachable interface."""
    name = text.strip().lower()
    if name != "localhost":
        try:
            if not ipaddress.ip_address(name).is_loopback:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a loopback address (127.0.0.0/8, ::1, localhost)"
            ) from None
    return name


def build_parser() -> argparse.ArgumentParser:
    """The ``simulate`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mimecast-connector simulate",
        description=(
            "Run an embedded Mimecast API 2.0 simulator on 127.0.0.1 until interrupted (with --auth api_keys_v1, an "
            "API 1.0 host that checks request signatures)."
        ),
    )
    parser.add_argument(
        "--port", type=_bounded(int, 0, 65535), default=8080, help="port to listen on (0 picks a free one)"
    )
    parser.add_argument(
        "--host", type=_loopback, default="127.0.0.1", help="loopback interface to bind (default 127.0.0.1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="tenant seed (same seed, same data)")
    parser.add_argument("--size", choices=sorted(SIZE_PRESETS), default="small", help="tenant size preset")
    parser.add_argument("--client-id", default="simulator-client-id", help="accepted client id")
    parser.add_argument("--client-secret", default="simulator-client-secret", help="accepted client secret")
    defaults = ApiV1Keys()
    parser.add_argument(
        "--auth",
        choices=("oauth2", "api_keys_v1"),
        default="oauth2",
        help="oauth2: an API 2.0 host (bearer tokens); api_keys_v1: an API 1.0 host that checks request signatures",
    )
    parser.add_argument("--app-id", default=defaults.app_id, help="accepted API 1.0 Application ID")
    parser.add_argument("--app-key", default=defaults.app_key, help="accepted API 1.0 Application Key")
    parser.add_argument("--access-key", default=defaults.access_key, help="accepted API 1.0 Access Key")
    parser.add_argument("--secret-key", default=defaults.secret_key, help="accepted API 1.0 Secret Key (base64)")
    parser.add_argument(
        "--future-days",
        type=_bounded(float, 0, 3650),
        default=0.0,
        help="days of the preset's history placed in the future, so records keep arriving while it runs",
    )
    parser.add_argument(
        "--token-ttl", type=_bounded(float, 1, 86400), default=1799, help="expires_in of issued tokens (seconds)"
    )
    parser.add_argument("--order", choices=ORDERS, default="newest_first", help="order of audit records")
    parser.add_argument(
        "--quota", type=_bounded(int, 1, 10**9), default=None, help="enforce at most N API requests per window"
    )
    parser.add_argument(
        "--quota-window", type=_bounded(float, 0.001, 86400), default=60.0, help="quota window in seconds"
    )
    parser.add_argument(
        "--lag-max", type=_bounded(float, 0, 86400), default=0.0, help="index lag: at most this many seconds"
    )
    parser.add_argument(
        "--latency", type=_bounded(float, 0, 60), default=0.0, help="fixed latency per request (s, work included)"
    )
    parser.add_argument(
        "--siem-records",
        type=_bounded(int, 0, 10**8),
        default=0,
        help="also serve SIEM Cloud Gateway logs: this many records of every type over 7 days (0: no SIEM)",
    )
    parser.add_argument(
        "--siem-interval",
        type=_bounded(float, 1, 86400),
        default=900.0,
        help="seconds between SIEM batch files of a type (default 900)",
    )
    parser.add_argument(
        "--siem-future-hours",
        type=_bounded(float, 0, 24 * 365),
        default=0.0,
        help="hours of the SIEM data placed in the future, so batch files keep being published while it runs",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; return the exit code (2 for bad arguments, as argparse)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    keys = None
    if args.auth == "api_keys_v1":
        try:
            keys = ApiV1Keys(args.app_id, args.app_key, args.access_key, args.secret_key)
        except ValueError as exc:
            print(f"simulate: error: --secret-key: {exc}", file=sys.stderr)
            return 2
    siem = None
    if args.siem_records:
        siem = SiemSpec(
            seed=args.seed,
            records_per_type=int(args.siem_records),
            file_interval_seconds=args.siem_interval,
            end=time.time() + args.siem_future_hours * 3600 if args.siem_future_hours else None,
        )
    faults = FaultPlan(
        quota_limit=args.quota,
        quota_window_seconds=args.quota_window,
        lag_max_seconds=args.lag_max,
        latency_seconds=args.latency,
    )
    try:
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
            api_keys_v1=keys,
            siem=siem,
        )
    except OSError as exc:  # the port is taken, or the address is not on this machine
        print(f"simulate: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
