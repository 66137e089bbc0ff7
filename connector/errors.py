"""The connector's exception hierarchy.

Every error the connector raises on purpose is a ``ConnectorError``::

    ConnectorError
    ├── ConfigError               bad or missing parameter (names the parameter)
    ├── AuthError                 token endpoint rejected the client key/secret, or a second 401
    │   └── PermissionDeniedError 401/403 on an endpoint: the API application lacks a product
    ├── ApiError                  Mimecast answered with an error (HTTP status, meta.status or a fail[] entry)
    │   ├── RateLimitExhaustedError  429s kept coming after the retry budget was spent
    │   ├── PaginationError       the server did not advance (repeated page token) or the page cap was hit
    │   └── RequestCancelledError the caller cancelled the request (closed its listing) before it was sent
    ├── CheckpointError           checkpoint file corrupt, of an unknown version, or not writable
    │   └── StateLockedError      another run holds the checkpoint's lock (names its pid)
    ├── SinkError                 the CLI's output could not be opened, written or synced (disk full: ENOSPC)
    ├── MappingError              a raw record could not be mapped (names the record id or position)
    │   └── UnkeyableRecordError  a record without an id whose content key cannot be computed
    └── EventValidationError      a mapped event failed the OCSF schema or semantic checks

Messages are actionable and never contain a secret, an access token or a token-endpoint response body.
``exit_code`` is what the CLI exits with when the error ends a run.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "CheckpointError",
    "ConfigError",
    "ConnectorError",
    "EventValidationError",
    "MappingError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitExhaustedError",
    "RequestCancelledError",
    "SinkError",
    "StateLockedError",
    "UnkeyableRecordError",
]


class ConnectorError(Exception):
    """Base class of every error the connector raises on purpose."""

    exit_code: int = 1


class ConfigError(ConnectorError):
    """A parameter is missing, unknown or malformed. ``parameter`` names it."""

    exit_code = 2

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class AuthError(ConnectorError):
    """Mimecast did not accept the credentials (token endpoint refusal, or 401 after a fresh token)."""

    exit_code = 3


class PermissionDeniedError(AuthError):
    """The credentials work but the API application may not call this endpoint (401/403 on an API call)."""

    exit_code = 4

    def __init__(self, message: str, *, event_type: str | None = None, product: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.product = product


class ApiError(ConnectorError):
    """Mimecast answered with an error. ``retryable`` says whether the same request may be sent again."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code
        self.code = code
        self.retryable = retryable


class RateLimitExhaustedError(ApiError):
    """Mimecast kept answering 429 after the retry budget was spent."""


class PaginationError(ApiError):
    """The server repeated a page token, or the configured page cap was reached."""


class RequestCancelledError(ApiError):
    """The caller cancelled the request (it closed the listing it belonged to): it was not sent, or its wait for a
    retry or a rate limit was cut short. Raised on the thread that was to send it; a read-ahead drops it."""


class CheckpointError(ConnectorError):
    """The checkpoint file is corrupt, of an unknown version, or could not be written. ``path`` names it."""

    exit_code = 6

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StateLockedError(CheckpointError):
    """Another ``run`` holds the lock of this checkpoint; ``holder_pid`` is its process id when known.

    Its own exit code: a scheduler whose previous run is still going can tell "skipped, already running" from
    a checkpoint that needs an operator (exit 6).
    """

    exit_code = 8

    def __init__(self, message: str, *, path: str | None = None, holder_pid: int | None = None) -> None:
        super().__init__(message, path=path)
        self.holder_pid = holder_pid


class SinkError(ConnectorError):
    """The output could not be opened, written or synced (a full disk says ENOSPC). ``path`` names the file.

    Its own exit code: nothing was refused, the events are delivered again once the disk has room, and an
    operator's alert on "disk full" must not read as "records refused" (exit 1).
    """

    exit_code = 7

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class MappingError(ConnectorError):
    """A raw record could not be mapped. ``record_id`` is its Mimecast id, or ``#<position>`` without one."""

    def __init__(self, message: str, *, record_id: str | None = None) -> None:
        super().__init__(message)
        self.record_id = record_id


class UnkeyableRecordError(MappingError):
    """A record whose content key cannot be computed: its canonical JSON cannot be written (nested beyond the
    serialiser's 254 levels, an integer beyond 64 bits). The record is refused as one record, never a traceback."""


class EventValidationError(ConnectorError):
    """A mapped event failed schema or semantic validation. ``path`` is the failing JSON path."""

    def __init__(self, message: str, *, record_id: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.record_id = record_id
        self.path = path
