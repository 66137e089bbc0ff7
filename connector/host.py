"""The plugin contract a host SIEM platform loads (entry point group ``siem.connectors``, name ``mimecast``).

The host gives the parameters and the last checkpoint it committed; the connector yields batches. For each batch
the host durably stores ``batch.events`` in table ``batch.table`` and only then commits ``batch.checkpoint`` (when
it is not None). Committing after acceptance is what makes delivery at-least-once with stable ``metadata.uid``
values, so the host (or the SIEM) can drop the rare duplicate after a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from connector.api.auth_select import API_GENERATION, auth_method_note
from connector.api.client import MimecastClient
from connector.api.ratelimit import RetryPolicy
from connector.api.transport import proxy_password
from connector.checkpoint import Checkpoint
from connector.collector import Collector, RunSummary
from connector.config import Config
from connector.errors import ConfigError
from connector.events import Batch
from connector.log import register_secret
from connector.mapping.mapper import Mapper, now_ms
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.streams.base import Stream
from connector.streams.registry import selected

__all__ = ["Batch", "MimecastConnector"]

_log = logging.getLogger("connector.host")


def _require_api_generation(config: Config, streams: Iterable[Stream]) -> None:
    """Fail fast when a selected stream exists only on an API generation the configured credentials cannot reach.

    Raises:
        ConfigError: names ``auth_method`` and the streams.
    """
    generation = API_GENERATION[config.auth_method]
    missing = [stream.name for stream in streams if generation not in stream.api_versions]
    if missing:
        raise ConfigError(
            f"event types {', '.join(missing)} exist only on Mimecast API 2.0, and auth_method {config.auth_method} "
            f"reaches API {generation}: use an API 2.0 application (auth_method oauth2) for them, or remove them "
            "from event_types.",
            parameter="auth_method",
        )


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


class MimecastConnector:
    """One configured Mimecast tenant. Build once per host worker; call ``collect`` once per scheduled run.

    Args:
        parameters: the manifest parameters (validated here; ``ConfigError`` names a bad one), or a ``Config``.
        environ: where ``MIMECAST_CLIENT_SECRET`` may come from (default ``os.environ``).
        transport: an httpx transport (tests); default real HTTPS.
        now_ms: wall clock in epoch ms (tests and the simulator share one).
        sleep: how to wait on rate limits and backoff (tests inject a recorder).
        clock: monotonic seconds for token lifetimes and the rate gate; a test that injects ``sleep`` should inject
            a clock that its ``sleep`` advances, or a closed gate stays closed in real time.
        retry: retry policy (default: 5 attempts, 60 s cap).
    """

    def __init__(
        self,
        parameters: Mapping[str, object] | Config,
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        now_ms: Callable[[], int] = now_ms,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if isinstance(parameters, Config):
            self.config = parameters
        else:
            self.config = Config.from_parameters(parameters, environ=environ)
        self.config.require_secret()
        self._streams = selected(self.config.event_types)
        _require_api_generation(self.config, self._streams)
        note = auth_method_note(self.config)
        if note is not None:
            _log.warning(note)
        register_secret(self.config.client_secret)
        register_secret(proxy_password(self.config.proxy_url))
        self._now_ms = now_ms
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        if clock is not None:
            extra["clock"] = clock
        self.client = MimecastClient.from_config(
            self.config,
            wall_clock=lambda: now_ms() / 1000,
            page_size=self.config.page_size,
            # A reader thread fetches the next pages while this one maps (at most two pages ahead, across the
            # audit slices too): the pull then costs max(network, CPU) instead of their sum (bench/RESULTS.md).
            read_ahead=True,
            max_pages=self.config.max_pages_per_call,
            retry=retry,
            transport=transport,
            timeout=_timeout(self.config.request_timeout_seconds),
            proxy_url=self.config.proxy_url,
            **extra,
        )
        self._mapper = Mapper(clock_ms=now_ms, emit_other=self.config.emit_other_audit_types)
        self._validator = EventValidator()
        self.summary = RunSummary()

    def check(self) -> None:
        """Permission preflight for each configured event type.

        Raises:
            AuthError: the client key or secret was rejected.
            PermissionDeniedError: names the event type and the Mimecast product the API application lacks.
        """
        now = self._now_ms()
        for stream in self._streams:
            self.client.probe(stream.probe(now), stream.name)

    def collect(self, checkpoint: Checkpoint | Mapping[str, Any] | None) -> Iterator[Batch]:
        """One collection pass from ``checkpoint`` (None on the first run). ``summary`` describes it afterwards.

        The checkpoint is checked and ``summary`` replaced when this is called, not when the first batch is pulled.

        Raises:
            CheckpointError: the checkpoint is corrupt or of an unknown version.
        """
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            checkpoint = Checkpoint.from_dict(checkpoint)
        collector = Collector(
            self.client,
            Transformer(self._mapper, self._validator, raw_data_max_bytes=self.config.raw_data_max_bytes),
            streams=self._streams,
            config=self.config,
            now_ms=self._now_ms,
        )
        self.summary = collector.summary
        return collector.collect(checkpoint)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.client.close()

    def __enter__(self) -> MimecastConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MimecastConnector(api_base_url={self.config.api_base_url!r}, event_types={self.config.event_types!r})"
