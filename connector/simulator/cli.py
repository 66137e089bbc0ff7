"""Command line for the simulator: ``python -m connector.simulator --port 8080 --seed 1 --size small``.

``mimecast-connector simulate`` delegates here through :func:`main`.
"""

from __future__ import annotations

import argparse

from connector.simulator.server import serve
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted; return the exit code."""
    args = build_parser().parse_args(argv)
    return serve(
        port=args.port,
        seed=args.seed,
        size_preset=args.size,
        host=args.host,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
