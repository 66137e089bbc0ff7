"""The simulated S3 host that serves SIEM batch files behind pre-signed links.

A second ``ThreadingHTTPServer`` on its own 127.0.0.1 port, separate from the API host, because that is what a
client meets: the batch listing hands out pre-signed URLs to another host, which knows nothing of bearer tokens.
Like S3 it refuses a request that carries an ``Authorization`` header as well as a query-string signature (400
``InvalidArgument``), checks the signature (403 ``SignatureDoesNotMatch``) and the expiry (403 ``AccessDenied``,
"Request has expired"), and answers 404 ``NoSuchKey`` for an object it does not hold (or no longer: retention).
Errors are S3's XML bodies. A file body is the gzip bytes with ``Content-Type: application/gzip`` and no
``Content-Encoding``, so an HTTP client does not decode it on the caller's behalf.

Files are rendered on demand (:meth:`SiemData.file_bytes`) and kept in a small LRU bounded in bytes, so a listing
that needed a file's size and the download that follows render it once.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlsplit

from connector.simulator.faults import FaultPlan
from connector.simulator.http import Server
from connector.simulator.siem_data import SIEM_TYPES, SiemData, SiemFile

__all__ = ["DownloadCounters", "SiemFileHost"]

_SLUGS = {t.replace(" ", "-"): t for t in SIEM_TYPES}
_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class DownloadCounters:
    """What the file host answered."""

    downloads: int = 0
    downloads_ok: int = 0
    downloads_expired: int = 0
    downloads_missing: int = 0
    downloads_refused_auth: int = 0
    downloads_bad_signature: int = 0
    downloads_failed: int = 0
    records_downloaded: int = 0
    records_repeated: int = 0
    bytes_downloaded: int = 0


def _amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _parse_amz_date(text: str) -> int | None:
    try:
        return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))
    except (ValueError, OverflowError):
        return None


def _xml_error(code: str, message: str, **extra: str) -> bytes:
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
        "<RequestId>SIMULATED0000000</RequestId><HostId>c2ltdWxhdGVk</HostId></Error>"
    ).encode()


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str


class SiemFileHost:
    """Signs download links for SIEM files and serves them over HTTP (see the module docstring)."""

    def __init__(
        self,
        data: SiemData,
        *,
        key: bytes,
        clock: Callable[[], float],
        faults: Callable[[], FaultPlan],
        cache_bytes: int = 64 * 2**20,
    ) -> None:
        """Serve ``data``'s files; ``key`` signs links, ``clock`` is "now" (epoch s), ``faults`` the live plan."""
        self.data = data
        self._key = key
        self._clock = clock
        self._faults = faults
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._cached = 0
        self._sizes: dict[tuple[str, int, int], int] = {}
        self._lock = threading.Lock()
        self._counters: dict[str, int] = dict.fromkeys(DownloadCounters.__slots__, 0)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1") -> str:
        """Start serving on a free port of ``host``; return the base URL."""
        if self._server is not None:
            return self.base_url
        handler = type("BoundFileHandler", (_FileHandler,), {"host": self})
        server = Server((host, 0), handler)
        self._server = server
        self.base_url = f"http://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="siem-file-host", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- links ---------------------------------------------------------------------------------------------

    def _path(self, file: SiemFile) -> str:
        """The object's path: ``/<account>/<type-slug>/<YYYY>/<MM>/<DD>/<slot>.ndjson.gz`` (publication day)."""
        day = time.strftime("%Y/%m/%d", time.gmtime(file.published_at))
        return (
            f"/{quote(self.data.spec.account_id, safe='')}/{file.type.replace(' ', '-')}/{day}/{file.index}.ndjson.gz"
        )

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        return hmac.new(self._key, f"{path}\n{amz_date}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, file: SiemFile, now: float, repeat: int) -> dict[str, Any]:
        """The listing entry of ``file``: ``{"url", "size", "expiry"}``, a fresh link valid from ``now``."""
        ttl = max(1, round(self.data.spec.link_ttl_seconds))
        signed_at = int(now)
        amz_date, expires = _amz_date(signed_at), str(ttl)
        path = self._path(file)
        query = (
            f"X-Amz-Algorithm={_ALGORITHM}&X-Amz-Credential=SIMULATED%2F{amz_date[:8]}%2Fus-east-1%2Fs3%2Faws4_request"
            f"&X-Amz-Date={amz_date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={self._signature(path, amz_date, expires)}"
        )
        return {
            "url": f"{self.base_url}{path}?{query}",
            "size": self.size(file, repeat),
            "expiry": _iso(signed_at + ttl),
        }

    # --- bytes ---------------------------------------------------------------------------------------------

    def size(self, file: SiemFile, repeat: int) -> int:
        """Bytes of the gzip file (rendered once, then remembered)."""
        key = (file.type, file.index, repeat)
        with self._lock:
            known = self._sizes.get(key)
        return known if known is not None else len(self.body(file, repeat))

    def body(self, file: SiemFile, repeat: int) -> bytes:
        """The gzip bytes of ``file``, from the LRU or freshly rendered."""
        key = (file.type, file.index, repeat)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        rendered = self.data.file_bytes(file, repeat)
        with self._lock:
            self._sizes[key] = len(rendered)
            if len(rendered) <= self._cache_bytes and key not in self._cache:
                self._cache[key] = rendered
                self._cached += len(rendered)
                while self._cached > self._cache_bytes:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached -= len(evicted)
        return rendered

    # --- serving -------------------------------------------------------------------------------------------

    @property
    def counters(self) -> DownloadCounters:
        """A snapshot of the download counters."""
        with self._lock:
            return DownloadCounters(**self._counters)

    def reset_observations(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._counters = dict.fromkeys(DownloadCounters.__slots__, 0)

    def _take(self, faults: FaultPlan, name: str) -> bool:
        left = getattr(faults, name)
        if left > 0:
            setattr(faults, name, left - 1)
            return True
        return False

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counters[name] += by

    def answer(self, target: str, headers: dict[str, str]) -> _Answer:
        """Answer one ``GET`` of ``target`` (path and query) with lower-cased ``headers``."""
        self._count("downloads")
        split = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if "authorization" in headers:
            self._count("downloads_refused_auth")
            return _Answer(
                400,
                _xml_error(
                    "InvalidArgument",
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                    "string parameter or the Authorization header should be specified",
                    ArgumentName="Authorization",
                ),
                "application/xml",
            )
        amz_date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        expected = self._signature(split.path, amz_date, expires)
        signed_at = _parse_amz_date(amz_date)
        if (
            query.get("X-Amz-Algorithm") != _ALGORITHM
            or signed_at is None
            or not expires.isdigit()
            or not hmac.compare_digest(query.get("X-Amz-Signature", ""), expected)
        ):
            self._count("downloads_bad_signature")
            return _Answer(
                403,
                _xml_error(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                ),
                "application/xml",
            )
        now = self._clock()
        faults = self._faults()
        with self._lock:
            expire = self._take(faults, "siem_expire_links_next")
            missing = not expire and self._take(faults, "siem_missing_links_next")
            failing = not (expire or missing) and self._take(faults, "siem_download_error_next")
            repeat = max(0, faults.siem_repeat_last)
        expiry = signed_at + int(expires)
        if expire or now >= expiry:
            self._count("downloads_expired")
            return _Answer(
                403,
                _xml_error(
                    "AccessDenied",
                    "Request has expired",
                    **{"X-Amz-Expires": expires, "Expires": _iso(expiry), "ServerTime": _iso(now)},
                ),
                "application/xml",
            )
        file = None if missing else self._resolve(split.path, now)
        if file is None:
            self._count("downloads_missing")
            return _Answer(
                404, _xml_error("NoSuchKey", "The specified key does not exist.", Key=split.path[1:]), "application/xml"
            )
        if failing:
            self._count("downloads_failed")
            return _Answer(503, _xml_error("SlowDown", "Please reduce your request rate."), "application/xml")
        body = self.body(file, repeat)
        repeated = self.data.repeated_in(file, repeat)
        with self._lock:
            self._counters["downloads_ok"] += 1
            self._counters["records_downloaded"] += file.count + repeated
            self._counters["records_repeated"] += repeated
            self._counters["bytes_downloaded"] += len(body)
        return _Answer(200, body, "application/gzip")

    def _resolve(self, path: str, now: float) -> SiemFile | None:
        """The visible file at ``path``, or ``None`` (unknown, not published yet, or past retention)."""
        parts = path.split("/")
        if len(parts) != 7 or not parts[6].endswith(".ndjson.gz"):
            return None
        log_type = _SLUGS.get(parts[2])
        slot_text = parts[6].removesuffix(".ndjson.gz")
        if log_type is None or not slot_text.isdigit():
            return None
        file = self.data.file(log_type, int(slot_text))
        if file is None or self._path(file) != path or not self.data.visible(file, round(now * 1000)):
            return None
        return file


class _FileHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler of the file host."""

    host: ClassVar[SiemFileHost]
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    timeout = 60
    wbufsize = -1
    disable_nagle_algorithm = True
    _received: float = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def parse_request(self) -> bool:
        """Note when the request came in: the download latency runs from there."""
        self._received = time.perf_counter()
        return super().parse_request()

    def _serve(self, send_body: bool) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        host = self.host
        try:
            answer = host.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
        except Exception as exc:  # a simulator bug must show up as a 500, not a dropped connection
            answer = _Answer(500, _xml_error("InternalError", type(exc).__name__), "application/xml")
        latency = host._faults().siem_download_latency_seconds
        remaining = latency - (time.perf_counter() - self._received)
        if remaining > 0:
            time.sleep(remaining)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if send_body:
                view = memoryview(answer.body)
                for start in range(0, len(view), 1 << 16):
                    self.wfile.write(view[start : start + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        """A download."""
        self._serve(True)

    def do_HEAD(self) -> None:
        """The headers of a download."""
        self._serve(False)
