"""Parquet files in the Amazon Security Lake custom-source layout, on a local folder or in S3.

Layout (one OCSF class per source, so one source per table)::

    <root>/ext/<source>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/<uuid>.parquet

``<root>`` is a folder or ``s3://bucket[/prefix]`` (the lake bucket); ``<source>`` the table's custom-source name
(``source_names``, default ``mimecast_<table>``); ``eventDay`` the UTC day of each event's ``time``. Every file of a
table has the table's fixed Arrow schema (``connector.sinks.arrow_schema``), zstd-compressed, its rows sorted by
``time``.

Lifecycle of a file: events are buffered per (table, day) (``buffer_rows`` events at most, all tables together),
then sorted and appended as one row group to a *part*, a Parquet file being written under a temporary name
(``.<uuid>.parquet.tmp``: in its final folder for a local root, in ``spool_dir`` for S3). A part is closed (its
footer written, the file fsynced) when it reaches ``max_file_bytes``, when it is ``max_file_age_seconds`` old, when
the next sorted chunk starts before its last row (so a file is sorted as a whole without holding it in memory), and
at every ``sync()``. ``sync()`` then *publishes* every closed part: a local part is renamed to ``<uuid>.parquet``
and its folder fsynced; an S3 part is uploaded (multipart when large), and an S3 key exists only once its upload
completed. So a file is visible under its final name only when it is whole, and everything the runner's checkpoint
covers is published before the checkpoint is committed. A crash before ``sync`` leaves only temporary names behind
(nothing reads them; the next run delivers their events again).

A file never spans a ``sync``: its size is bounded by what arrives between two checkpoint commits, which is why the
caller should commit about every ``max_file_age_seconds`` for this sink (Security Lake asks for writes between every
5 minutes and every day, in files of hundreds of MB) rather than every 2 s.

S3 credentials: boto3's default chain (environment, profile, instance role), then, with ``role_arn``, STS
``AssumeRole`` with the ``external_id`` Security Lake gave the custom source (renewed before it expires). Neither
the external id nor any credential is logged or put into an error. Every failure is a ``SinkError``; the first
failed ``sync`` is raised again by every later one (the runner commits nothing more).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from connector.durability import fsync_directory
from connector.errors import ConfigError, SinkError
from connector.events import Batch
from connector.secret import Secret

# pyarrow's default allocator (mimalloc) keeps freed pages: ~10 MiB more RSS for the same work. Asked for only when
# this process has not loaded pyarrow yet (a host that uses pyarrow itself keeps its own choice).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - exercised only on a host installed without the extra
    raise ConfigError(
        "the parquet output needs pyarrow: install the connector with its 'parquet' extra "
        "(pip install 'mimecast-ocsf-connector[parquet]')",
        parameter="output",
    ) from None

from connector.registry import registry
from connector.sinks.arrow_schema import TableConverter, table_converter

__all__ = [
    "DEFAULT_BUFFER_ROWS",
    "DEFAULT_MAX_FILE_AGE_SECONDS",
    "DEFAULT_MAX_FILE_BYTES",
    "ParquetSink",
    "default_source_name",
    "open_sink",
]

_log = logging.getLogger("connector.sinks.parquet")

DEFAULT_MAX_FILE_BYTES: Final = 256 * 2**20  # Security Lake's guidance: files of roughly 256 MB to 1 GB
DEFAULT_MAX_FILE_AGE_SECONDS: Final = 300.0  # and writes no more often than every 5 minutes
# Events held before they are written as row groups (all tables together). Memory grows with rows x columns: a
# row group of a wide OCSF class (~1,300 leaf columns) costs ~7 MiB per 1,000 rows in Arrow while it is encoded, so
# 2,000 keeps a 1M-event pull under 200 MiB (bench/RESULTS.md, "Memory (Parquet sink)"); larger row groups make
# smaller files (each row group's footer metadata is ~300 KiB) at the cost of memory: buffer_rows trades the two.
DEFAULT_BUFFER_ROWS: Final = 2_000
# Parts open at once per table: the current event day and the one before (a catch-up reads in time order, so an
# older day gets no more events). Each open writer of a wide OCSF schema holds ~2 MB; the older part is closed first.
OPEN_PARTS_PER_TABLE: Final = 2
COMPRESSION: Final = "zstd"
_ASSUMED_ROLE_SECONDS: Final = 3600
_RENEW_BEFORE_SECONDS: Final = 300
_SESSION_NAME: Final = "mimecast-ocsf-connector"
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}\Z")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")  # a 12-digit account, or the external id per the doc
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}(?:/[A-Za-z0-9_.-]{1,64})?\Z")  # name, or name/version
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_SETTINGS: Final = frozenset({
    "region", "account_id", "source_names", "max_file_bytes", "max_file_age_seconds", "buffer_rows", "role_arn",
    "external_id", "endpoint_url", "spool_dir",
})  # fmt: skip


def default_source_name(table: str) -> str:
    """The custom-source name of ``table`` unless ``source_names`` says otherwise: ``mimecast_<table>``."""
    return f"mimecast_{table}"


@dataclass
class _Part:
    """A Parquet file being written under a temporary name (and, once closed, waiting for ``sync`` to publish)."""

    table: str
    key: str  # the final path below the root: ext/<source>/region=.../eventDay=.../<uuid>.parquet
    temp: Path
    writer: Any  # pyarrow.parquet.ParquetWriter, None once closed
    opened: float
    rows: int = 0
    written_at: float = 0.0  # the clock when a row group was last appended
    max_time: int | None = None


@dataclass
class _Stats:
    """What the sink did, for the run summary and the tests."""

    rows: int = 0
    files: list[str] = field(default_factory=list)  # published keys (relative to the root), in order
    unfit_values: int = 0
    order_rolls: int = 0


class ParquetSink:
    """The Sink protocol over Security Lake-layout Parquet files (see the module docstring).

    Args:
        root: a local folder, or ``s3://bucket[/prefix]``.
        region, account_id: the ``region=`` and ``accountId=`` partition values.
        source_names: table -> custom-source name (default ``mimecast_<table>``).
        max_file_bytes, max_file_age_seconds: a part is closed when it reaches either.
        buffer_rows: events buffered (all tables together) before they are written as row groups.
        role_arn, external_id: S3 only: the role Security Lake created for the custom source, and its external id.
        endpoint_url: S3 only: another endpoint (tests run moto's server on 127.0.0.1).
        spool_dir: S3 only: where parts are written before their upload (created 0600); by default a folder of
            this sink's own in the system's temporary folder (``mkdtemp``: private, never a shared fixed name),
            removed on ``close``.
        clock: monotonic seconds, for the age of a part (tests inject one).
    """

    def __init__(
        self,
        root: str,
        *,
        region: str,
        account_id: str,
        source_names: Mapping[str, str] | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_file_age_seconds: float = DEFAULT_MAX_FILE_AGE_SECONDS,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
        role_arn: str | None = None,
        external_id: Secret | None = None,
        endpoint_url: str | None = None,
        spool_dir: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._account = account_id
        self._sources = dict(source_names or {})
        self._max_bytes = max_file_bytes
        self._max_age = max_file_age_seconds
        # a part cannot outlive a sync: asking the runner to commit no more often than parts may age keeps the
        # files near the size Security Lake wants during a long catch-up (``runner.commit_interval``)
        self.sync_interval_seconds = max_file_age_seconds
        self._buffer_rows = buffer_rows
        self._clock = clock
        self._s3: _S3Target | None = None
        self._local: Path | None = None
        if root.startswith("s3://"):
            bucket, _, prefix = root[len("s3://") :].partition("/")
            self._s3 = _S3Target(bucket, prefix.strip("/"), region, role_arn, external_id, endpoint_url)
            self._own_spool = not spool_dir
            self._spool = Path(spool_dir) if spool_dir else Path(tempfile.mkdtemp(prefix="mimecast-parquet-spool-"))
            self._describe = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")
        else:
            self._local = Path(root)
            self._spool = self._local
            self._own_spool = False
            self._describe = str(self._local)
        self._buffers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._buffered = 0
        self._open: dict[tuple[str, str], _Part] = {}
        self._closed: list[_Part] = []
        self._sync_error: SinkError | None = None
        self.stats = _Stats()
        try:
            self._spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(self._spool, exc, "create the output folder") from None

    # -- the Sink protocol ---------------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Buffer the batch's events (and write row groups when the buffer is full); durable only after ``sync``.

        Raises:
            SinkError: the events could not be taken (an unknown table, a write that failed).
        """
        if not batch.events or batch.table is None:
            return
        table = batch.table
        if table not in registry().tables:
            raise SinkError(f"parquet output: no table {table!r} in manifest.json; the batch was not written")
        for event in batch.events:
            buffer = self._buffers.setdefault((table, _event_day(event)), [])
            buffer.append(event)
        self._buffered += len(batch.events)
        if self._buffered >= self._buffer_rows:
            self._flush_all()
        self._roll_old()

    def sync(self) -> None:
        """Write what is buffered, close every part and publish it (rename, or upload); see the module docstring.

        Raises:
            SinkError: a part could not be written, closed or published; the caller must not commit. Every later
                ``sync`` (and ``close``) raises it again.
        """
        if self._sync_error is not None:
            raise self._sync_error
        try:
            self._flush_all()
            for key in list(self._open):
                self._close_part(key)
            self._publish()
        except SinkError as exc:
            self._sync_error = exc
            raise

    def close(self) -> None:
        """Sync, then drop whatever is left (the temporary files of parts that could not be published)."""
        try:
            self.sync()
        finally:
            for part in [*self._open.values(), *self._closed]:
                _abandon(part)
            self._open.clear()
            self._closed.clear()
            self._buffers.clear()
            if self._own_spool:
                shutil.rmtree(self._spool, ignore_errors=True)

    def __repr__(self) -> str:
        return f"ParquetSink({self._describe!r}, region={self._region!r})"

    # -- writing -------------------------------------------------------------------------------------------------

    def _flush_all(self) -> None:
        for key in list(self._buffers):
            self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        """Sort the (table, day) buffer by time and append it to that part as one row group."""
        events = self._buffers.pop(key, None)
        if not events:
            return
        self._buffered -= len(events)
        table, day = key
        events.sort(key=_event_time)
        part = self._open.get(key)
        first = _event_time(events[0])
        if part is not None and part.max_time is not None and first < part.max_time:
            self.stats.order_rolls += 1  # appending would break the file's order: start a new file
            self._close_part(key)
            part = None
        if part is None:
            self._close_oldest_of(table)
            part = self._open[key] = self._new_part(table, day)
        converter = table_converter(table)
        try:
            record_batch = converter.record_batch(events, self._unfit_reporter(converter))
        except Exception as exc:  # a shape even the checked path cannot place: a bug here, named, not a traceback
            raise SinkError(
                f"parquet output: events of table {table} do not fit its Arrow schema ({type(exc).__name__}: "
                f"{str(exc)[:200]}); the batch was not written"
            ) from None
        try:
            part.writer.write_batch(record_batch)
        except (OSError, pa.ArrowException) as exc:
            del self._open[key]
            _abandon(part)
            raise _write_error(part, exc, "write events to") from None
        part.rows += len(events)
        part.written_at = self._clock()
        part.max_time = _event_time(events[-1])
        self.stats.rows += len(events)
        if _size(part.temp) >= self._max_bytes:
            self._close_part(key)

    def _close_oldest_of(self, table: str) -> None:
        """Close the least recently written parts of ``table`` until a new one may open (``OPEN_PARTS_PER_TABLE``)."""
        mine = [key for key in self._open if key[0] == table]
        while len(mine) >= OPEN_PARTS_PER_TABLE:
            oldest = min(mine, key=lambda key: self._open[key].written_at)
            self._close_part(oldest)
            mine.remove(oldest)

    def _roll_old(self) -> None:
        now = self._clock()
        for key, part in list(self._open.items()):
            if now - part.opened >= self._max_age:
                self._flush(key)
                if key in self._open:
                    self._close_part(key)

    def _new_part(self, table: str, day: str) -> _Part:
        name = uuid.uuid4()
        source = self._sources.get(table) or default_source_name(table)
        folder = f"ext/{source}/region={self._region}/accountId={self._account}/eventDay={day}"
        key = f"{folder}/{name}.parquet"
        temp_folder = self._spool / folder if self._local is not None else self._spool
        temp = temp_folder / f".{name}.parquet.tmp"
        try:
            temp_folder.mkdir(parents=True, exist_ok=True)
            if self._s3 is not None:  # a spooled part is the tenant's events on a shared machine: owner only
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            writer = pq.ParquetWriter(
                str(temp),
                table_converter(table).schema,
                compression=COMPRESSION,
                version="1.0",  # Parquet 1.x, as Security Lake asks; every type used here exists in it
                data_page_version="1.0",
            )
        except (OSError, pa.ArrowException) as exc:
            raise _os_error(temp, exc, "create") from None
        return _Part(table, key, temp, writer, self._clock())

    def _close_part(self, key: tuple[str, str]) -> None:
        """Write the part's footer and fsync it; it waits in ``_closed`` for the next ``sync`` to publish it."""
        part = self._open.pop(key)
        try:
            part.writer.close()
            part.writer = None
            _fsync_file(part.temp)
        except (OSError, pa.ArrowException) as exc:
            _abandon(part)
            raise _write_error(part, exc, "finish") from None
        self._closed.append(part)

    def _unfit_reporter(self, converter: TableConverter) -> Callable[[Mapping[str, Any], str], None]:
        def report(event: Mapping[str, Any], path: str) -> None:
            self.stats.unfit_values += 1
            uid = event.get("metadata", {}).get("uid") if isinstance(event.get("metadata"), Mapping) else None
            _log.warning(
                "a value does not fit its Parquet column; it is kept in the event's unmapped JSON instead",
                extra={"table": converter.table, "attribute": path, "metadata_uid": uid},
            )

        return report

    # -- publishing ----------------------------------------------------------------------------------------------

    def _publish(self) -> None:
        folders: dict[Path, None] = {}
        while self._closed:
            part = self._closed[0]
            if self._s3 is not None:
                self._s3.upload(part.temp, part.key)
                _remove(part.temp)
            else:
                assert self._local is not None
                final = self._local / part.key
                try:
                    os.replace(part.temp, final)
                except OSError as exc:
                    raise _os_error(final, exc, "publish") from None
                folders[final.parent] = None
            self._closed.pop(0)
            self.stats.files.append(part.key)
        for folder in folders:
            fsync_directory(folder)

    def published(self) -> list[str]:
        """Every file published so far, as its key below the root (``ext/<source>/.../<uuid>.parquet``)."""
        return list(self.stats.files)


class _S3Target:
    """Uploads to one bucket and prefix, with boto3's credentials or a role assumed with an external id."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        region: str,
        role_arn: str | None,
        external_id: Secret | None,
        endpoint_url: str | None,
    ) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
        except ImportError:  # pragma: no cover - only without the extra
            raise ConfigError(
                "an s3:// parquet output needs boto3: install the connector with its 'parquet' extra",
                parameter="output",
            ) from None
        self._boto3 = boto3
        self._transfer = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20)
        self.bucket = bucket
        self.prefix = prefix
        self._region = region
        self._role_arn = role_arn
        self._external_id = external_id
        self._endpoint = endpoint_url
        self._client: Any = None
        self._expires: float = float("inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_S3Target(s3://{self.bucket}/{self.prefix}, role={self._role_arn!r})"

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None or time.time() >= self._expires - _RENEW_BEFORE_SECONDS:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        session = self._boto3.session.Session(region_name=self._region)
        if self._role_arn is None:
            return session.client("s3", endpoint_url=self._endpoint)
        request: dict[str, Any] = {
            "RoleArn": self._role_arn,
            "RoleSessionName": _SESSION_NAME,
            "DurationSeconds": _ASSUMED_ROLE_SECONDS,
        }
        if self._external_id is not None:
            request["ExternalId"] = self._external_id.reveal()
        try:
            answer = session.client("sts", endpoint_url=self._endpoint).assume_role(**request)
        except Exception as exc:  # botocore's ClientError, a connection error, missing base credentials...
            raise SinkError(
                f"parquet output: cannot assume the role {self._role_arn} for s3://{self.bucket}: "
                f"{_aws_reason(exc)}; check the role's trust policy and the external id "
                "Security Lake gave the custom source"
            ) from None
        credentials = answer["Credentials"]
        self._expires = credentials["Expiration"].timestamp()
        return session.client(
            "s3",
            endpoint_url=self._endpoint,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def upload(self, path: Path, key: str) -> None:
        """Upload one whole file; the object exists under its key only once the upload completed."""
        target = self.key(key)
        try:
            self._s3().upload_file(str(path), self.bucket, target, Config=self._transfer)
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(
                f"parquet output: cannot upload s3://{self.bucket}/{target}: {_aws_reason(exc)}; the checkpoint "
                "was not advanced past these events, so the next run delivers them again",
                path=f"s3://{self.bucket}/{target}",
            ) from None


def _aws_reason(exc: BaseException) -> str:
    """What AWS (or botocore) said: the error code and message when there is a response (also on the exception it
    wraps, as boto3's S3UploadFailedError does), else its text. botocore puts no credentials into either."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            error = response.get("Error", {})
            if error.get("Code") or error.get("Message"):
                return f"{error.get('Code')}: {error.get('Message')}"
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _event_time(event: Mapping[str, Any]) -> int:
    value = event.get("time")
    return value if type(value) is int else 0


def _event_day(event: Mapping[str, Any]) -> str:
    """``YYYYMMDD`` of the event's ``time`` (epoch ms) in UTC; 19700101 for a time out of range (never validated)."""
    try:
        return datetime.fromtimestamp(_event_time(event) / 1000, UTC).strftime("%Y%m%d")
    except (OverflowError, OSError, ValueError):
        return "19700101"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("a temporary Parquet file could not be removed", extra={"path": str(path), "error": str(exc)})


def _abandon(part: _Part) -> None:
    """Drop a part that will not be published: close its writer (errors ignored) and remove its temporary file."""
    if part.writer is not None:
        with contextlib.suppress(Exception):  # best effort: the file is removed next
            part.writer.close()
        part.writer = None
    _remove(part.temp)


def _os_error(path: Path, exc: BaseException, action: str) -> SinkError:
    number = getattr(exc, "errno", None)
    detail = getattr(exc, "strerror", None) or str(exc)
    name = errno.errorcode.get(number or 0)
    if name:
        detail = f"{detail} [{name}]"
    if number in _FULL:
        detail += ": the disk (or the quota) is full, free space there and run again"
    return SinkError(
        f"parquet output: cannot {action} {path}: {detail}; the checkpoint was not advanced past these events, "
        "so the next run delivers them again.",
        path=str(path),
        errno=number,
    )


def _write_error(part: _Part, exc: BaseException, action: str) -> SinkError:
    error = _os_error(part.temp, exc, action)
    return SinkError(f"{error} (table {part.table})", path=error.path, errno=error.errno)


# -- configuration -------------------------------------------------------------------------------------------------


def open_sink(target: str, settings: Mapping[str, Any]) -> ParquetSink:
    """The sink of ``--output parquet:<target>`` with the config file's ``outputs.parquet`` settings.

    Raises:
        ConfigError: a missing or bad setting, named ``outputs.parquet.<key>`` (or ``output`` for the target).
    """
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise ConfigError(
            f"outputs.parquet.{unknown[0]}: unknown setting (known: {', '.join(sorted(_SETTINGS))})",
            parameter=f"outputs.parquet.{unknown[0]}",
        )
    if not isinstance(target, str) or not target.strip():
        raise ConfigError("--output parquet: needs a folder or s3://bucket[/prefix]", parameter="output")
    if target.startswith("s3://"):
        bucket = target[len("s3://") :].partition("/")[0]
        if not _BUCKET.match(bucket):
            raise ConfigError(f"--output parquet:{target}: {bucket!r} is no S3 bucket name", parameter="output")
    region = _text(settings, "region", _REGION, "an AWS region such as us-east-1", required=True)
    account = _text(settings, "account_id", _ACCOUNT, "the AWS account id of the lake (12 digits)", required=True)
    names = settings.get("source_names", {})
    if not isinstance(names, Mapping):
        raise _bad("source_names", "an object mapping table names to custom-source names")
    for table, name in names.items():
        if table not in registry().tables:
            raise _bad(f"source_names.{table}", f"no such table (known: {', '.join(registry().tables)})")
        if not isinstance(name, str) or not _SOURCE.match(name):
            raise _bad(f"source_names.{table}", "a custom-source name: letters, digits, _ . : - (optionally /version)")
    role_arn = _text(settings, "role_arn", _ROLE_ARN, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    external_id = settings.get("external_id")
    if external_id is not None and (not isinstance(external_id, str) or not 2 <= len(external_id) <= 1224):
        raise _bad("external_id", "the external id Security Lake gave the custom source (2 to 1224 characters)")
    if external_id is not None and role_arn is None:
        raise _bad("external_id", "only used with role_arn (the role it is presented to)")
    endpoint = settings.get("endpoint_url")
    if endpoint is not None and (not isinstance(endpoint, str) or not re.match(r"https?://[^\s/]+", endpoint)):
        raise _bad("endpoint_url", "an http(s) URL")
    spool = settings.get("spool_dir")
    if spool is not None and (not isinstance(spool, str) or not spool):
        raise _bad("spool_dir", "a folder")
    if not target.startswith("s3://"):
        for key in ("role_arn", "external_id", "endpoint_url", "spool_dir"):
            if settings.get(key) is not None:
                raise _bad(key, "only for an s3:// target")
    return ParquetSink(
        target,
        region=region,
        account_id=account,
        source_names=dict(names),
        max_file_bytes=_number(settings, "max_file_bytes", DEFAULT_MAX_FILE_BYTES, minimum=2**20, integer=True),
        max_file_age_seconds=_number(settings, "max_file_age_seconds", DEFAULT_MAX_FILE_AGE_SECONDS, minimum=1),
        buffer_rows=_number(settings, "buffer_rows", DEFAULT_BUFFER_ROWS, minimum=1, integer=True),
        role_arn=role_arn,
        external_id=Secret(external_id) if external_id is not None else None,
        endpoint_url=endpoint,
        spool_dir=spool,
    )


def _bad(key: str, expected: str) -> ConfigError:
    return ConfigError(f"outputs.parquet.{key}: expected {expected}", parameter=f"outputs.parquet.{key}")


def _text(
    settings: Mapping[str, Any], key: str, pattern: re.Pattern[str], expected: str, *, required: bool = False
) -> Any:
    value = settings.get(key)
    if value is None:
        if required:
            raise ConfigError(f"outputs.parquet.{key} is required: {expected}", parameter=f"outputs.parquet.{key}")
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _bad(key, expected)
    return value


def _number(settings: Mapping[str, Any], key: str, default: Any, *, minimum: float, integer: bool = False) -> Any:
    value: Any = settings.get(key, default)
    number = isinstance(value, int) or (not integer and isinstance(value, float))
    if isinstance(value, bool) or not number or value < minimum:
        kind = "an integer" if integer else "a number"
        raise _bad(key, f"{kind} >= {minimum:g}")
    return value
