"""Command line: ``mimecast-connector {map,validate,run,check,simulate}``.

Exit codes: 0 success; 1 some records or events failed (the good ones were still written); 2 usage or
configuration error; other ``ConnectorError`` subclasses exit with their own ``exit_code``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import orjson

from connector.api.auth_select import auth_method_note
from connector.api.transport import environment_proxy, redact_url
from connector.api.urls import token_host_note
from connector.config import Config, output_sections
from connector.errors import ConfigError, ConnectorError, MappingError, SinkError
from connector.host import MimecastConnector
from connector.log import configure_logging, safe_line
from connector.mapping.mapper import Mapper, now_ms
from connector.observe import RunObserver
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.progress import wanted as progress_wanted
from connector.runner import close_all, deliver
from connector.runner import commit_interval as runner_commit_interval
from connector.sinks.base import Sink
from connector.sinks.outputs import OutputSpec, open_outputs, parse_output
from connector.store import CheckpointStore
from connector.streams.registry import map_sources
from connector.summary_json import check_writable as check_summary_writable

__all__ = ["main", "read_records"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_log = logging.getLogger("connector.cli")


# The keys of a Mimecast API 2.0 response body. An object with a ``data`` array and no other keys than these is a
# response body; any other object is a record, even one that has a ``data`` key of its own.
_BODY_KEYS = frozenset({"meta", "data", "fail"})


def _is_body(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("data"), list) and value.keys() <= _BODY_KEYS


def _records_in_body(body: object, source: str) -> Iterator[Any]:
    """The records of one JSON document: a response body's ``data`` (zero records when it is empty), a JSON
    array's items, or the document itself as one record.

    For ``users``, a ``data`` item with a ``users`` key and no ``emailAddress`` wraps one page of users (the
    internal-users response); when its ``users`` is not a list it is reported as a refused record in its place.
    """
    if isinstance(body, list):
        yield from body
        return
    if not _is_body(body):
        yield body
        return
    assert isinstance(body, dict)
    for index, item in enumerate(body["data"]):
        if source == "users" and isinstance(item, dict) and "users" in item and "emailAddress" not in item:
            users = item["users"]
            if isinstance(users, list):
                yield from users
            else:
                yield MappingError(f"data[{index}].users is not a list of users", record_id=f"data[{index}]")
        else:
            yield item


def read_records(stream: IO[bytes], source: str) -> Iterator[Any]:
    """Records from NDJSON (streamed line by line) or from one whole API response body (its ``data`` array).

    The rule for the first document (the first line, or the whole input when the first line is not JSON on its
    own, as in a pretty-printed body): a response body (an object with a ``data`` array and no keys but
    ``meta``, ``data`` and ``fail``) stands for its records, so ``{"data": []}`` is zero records; a JSON array
    stands for its items; anything else is one record, so a record line that merely has a ``data`` key is still
    counted (and refused if it is not a valid record). Every later line is one record.

    A line that is not JSON is yielded as a ``MappingError`` in its place, so positions stay aligned and the
    transformer reports it and goes on.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        head = orjson.loads(first)
    except orjson.JSONDecodeError:
        rest = stream.read()
        try:  # a pretty-printed response body spans many lines
            head = orjson.loads(first + rest)
        except orjson.JSONDecodeError:
            yield MappingError("line 1 is not valid JSON", record_id="line 1")
            yield from _ndjson(rest.splitlines(), 2)
            return
        yield from _records_in_body(head, source)
        return
    yield from _records_in_body(head, source)
    yield from _ndjson(stream, 2)


def _ndjson(lines: Any, start: int) -> Iterator[Any]:
    for number, line in enumerate(lines, start):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield MappingError(f"line {number} is not valid JSON ({exc})", record_id=f"line {number}")


def _open_input(path: str | None, argument: str) -> IO[bytes]:
    """The input file (stdin for None or ``-``); a file that cannot be opened is a usage error (exit 2), not
    "records refused" (exit 1). ``argument`` names it as the user typed it (``--input``, or ``file``)."""
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        what = f"{argument} {path}" if argument.startswith("-") else path
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", parameter=argument) from None


def _stdout_failed(exc: OSError) -> SinkError:
    """The standard output could not be written (``map > /dev/full``): a SinkError (exit 7) instead of a
    traceback. What is still buffered goes to the null device, so the interpreter's flush at exit stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    reason = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
    return SinkError(
        f"cannot write the standard output: {exc.strerror or exc}" + (f" ({reason})" if reason else ""),
        path="<stdout>",
        errno=exc.errno,
    )


def _cmd_map(args: argparse.Namespace) -> int:
    transformer = Transformer(Mapper(emit_other=args.emit_other), EventValidator())
    report = transformer.report
    out = sys.stdout.buffer
    stream = _open_input(args.input, "--input")
    records = read_records(stream, args.source)
    try:
        events = map_sources()[args.source](transformer, records, now_ms())
        try:
            for mapped in events:
                out.write(orjson.dumps(mapped.event))
                out.write(b"\n")
            out.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _stdout_failed(exc) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print("map summary:", file=sys.stderr)
    for line in report.summary_lines():
        print(line, file=sys.stderr)
    return EXIT_FAILED if report.failures else EXIT_OK


def _event_uid(event: object) -> object:
    """``metadata.uid`` of an event for ``validate``'s report, or None when the event has no such field."""
    metadata = event.get("metadata") if isinstance(event, dict) else None
    return metadata.get("uid") if isinstance(metadata, dict) else None


def _cmd_validate(args: argparse.Namespace) -> int:
    validator = EventValidator()
    stream = _open_input(args.file, "file")
    invalid = total = 0
    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            total += 1
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                invalid += 1
                print(safe_line(f"line {number}: not valid JSON ({exc})"), file=sys.stderr)
                continue
            problems = validator.problems(event)
            if problems:
                invalid += 1
                uid = _event_uid(event)
                for problem in problems:  # the uid and the problem texts quote the file: masked and escaped
                    print(safe_line(f"line {number} uid={uid}: {problem.path}: {problem.message}"), file=sys.stderr)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(f"validate: {total - invalid} valid, {invalid} invalid of {total} events", file=sys.stderr)
    return EXIT_FAILED if invalid else EXIT_OK


def _connector(args: argparse.Namespace) -> MimecastConnector:
    config = Config.from_file(args.config)
    secrets = [secret.reveal() for secret in (config.client_secret, config.app_key, config.secret_key)]
    configure_logging(args.log_level or config.log_level, secrets=secrets)
    return MimecastConnector(config)


def _run_once(
    connector: MimecastConnector,
    store: CheckpointStore,
    sinks: Sequence[Sink],
    *,
    commit_interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    observer: RunObserver | None = None,
) -> int:
    """One pass as a host would run it (``runner.deliver``), then the summary on stderr; the pass's exit code.

    ``observer`` adds the progress display, the metrics and the summary JSON (``connector.observe``).
    ``commit_interval`` defaults to what the sinks ask for (``runner.commit_interval``).
    """
    checkpoint = store.load()
    batches = connector.collect(checkpoint)
    watch = (observer or RunObserver()).start(connector, checkpoint, store)
    try:
        interval = commit_interval if commit_interval is not None else runner_commit_interval(sinks)
        deliver(batches, sinks, watch.store, commit_interval=interval, clock=clock)
    except BaseException as exc:
        watch.failed(exc)
        raise
    watch.stop()
    for line in connector.summary.lines():
        print(line, file=sys.stderr)
    code = connector.summary.exit_code or (EXIT_FAILED if connector.summary.report.failures else EXIT_OK)
    watch.finished(code)
    return code


def _sinks(args: argparse.Namespace) -> list[Sink]:
    """The outputs ``run`` was given, in order: ``--output-dir DIR`` (as ``--output ndjson:DIR``), then every
    ``--output`` (``connector.sinks.outputs``); none at all means the standard output."""
    specs = [OutputSpec("ndjson", args.output_dir)] if args.output_dir else []
    specs += [parse_output(value) for value in args.output or ()]
    return open_outputs(specs or [parse_output("-")], lambda: output_sections(args.config))


def _events_to_stdout(args: argparse.Namespace) -> bool:
    """Whether ``run`` writes events to the standard output: ``--output -``, or no output at all (``_sinks``)."""
    return "-" in (args.output or ()) or not (args.output or args.output_dir)


def _observer(args: argparse.Namespace) -> RunObserver:
    """The progress, metrics and summary JSON ``run`` was asked for (``connector.observe``)."""
    if args.summary_json:
        check_summary_writable(args.summary_json)
    progress = progress_wanted(sys.stderr, disabled=args.no_progress, events_to_stdout=_events_to_stdout(args),
                               stdout=sys.stdout)  # fmt: skip
    return RunObserver(
        progress_stream=sys.stderr if progress else None,
        metrics_address=(args.metrics_host, args.metrics_port) if args.metrics_port is not None else None,
        summary_json=args.summary_json,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    store = CheckpointStore(args.state)
    observer = _observer(args)
    # Configuration first, then the state: writable and locked for the whole run (every --loop pass), before
    # any output file is created or anything is pulled.
    with observer.recording_failures(), _connector(args) as connector, store.lock(), observer.serving():
        sinks = _sinks(args)
        try:
            while True:
                code = _run_once(connector, store, sinks, observer=observer)
                if not args.loop:
                    break
                print(f"next run in {args.loop:g} s (Ctrl-C to stop)", file=sys.stderr)
                time.sleep(args.loop)
        except BaseException as exc:
            close_all(sinks, after=exc)
            raise
        close_all(sinks)  # syncs: an error here is reported like any other
        return code


def _cmd_check(args: argparse.Namespace) -> int:
    with _connector(args) as connector:
        config = connector.config
        for note in (auth_method_note(config), token_host_note(config.token_url, config.api_base_url)):
            if note is not None:
                print(safe_line(note), file=sys.stderr)
        proxy = config.proxy_url or environment_proxy(config.api_base_url)
        if proxy:
            source = "proxy_url" if config.proxy_url else "the environment"
            print(safe_line(f"requests go through the proxy {redact_url(proxy)} (from {source})"), file=sys.stderr)
        connector.check()
        types = ", ".join(config.event_types)
        print(f"check passed: the API application may collect {types}", file=sys.stderr)
    return EXIT_OK


def _loop_seconds(text: str) -> float:
    """``--loop``: a finite number of seconds above zero (``time.sleep`` refuses a negative one after a whole pass,
    and ``nan`` or ``inf`` would never run again)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, not {text!r}")
    return seconds


def _port(text: str) -> int:
    """``--metrics-port``: a TCP port, 1..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, not {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the README and tests)."""
    parser = argparse.ArgumentParser(prog="mimecast-connector", description="Mimecast API 2.0 → OCSF 1.8.0")
    sub = parser.add_subparsers(dest="command", required=True)
    p_map = sub.add_parser("map", help="map raw Mimecast records (NDJSON or an API response body) to OCSF NDJSON")
    p_map.add_argument("--source", choices=sorted(map_sources()), required=True)
    p_map.add_argument("--input", help="file to read (default: stdin)")
    p_map.add_argument(
        "--emit-other", action="store_true", help="emit audit types outside the four tables as OCSF Base Event"
    )
    p_map.set_defaults(handler=_cmd_map)
    p_val = sub.add_parser("validate", help="validate OCSF NDJSON against the schemas and semantic rules")
    p_val.add_argument("file", nargs="?", help="file to read (default: stdin)")
    p_val.set_defaults(handler=_cmd_validate)
    p_run = sub.add_parser("run", help="run one collection pass (or --loop) as a host would")
    p_run.add_argument("--config", required=True, help="parameters file (JSON or YAML), see README")
    p_run.add_argument("--state", default=".state/checkpoint.json", help="checkpoint file (default %(default)s)")
    p_run.add_argument(
        "--output",
        action="append",
        metavar="OUTPUT",
        help="where events go, repeatable (each batch is committed once every output has it): ndjson:DIR (one "
        "<table>.ndjson per table), parquet:DIR or parquet:s3://BUCKET[/PREFIX] (the Amazon Security Lake layout, "
        "settings in outputs.parquet), hec:URL (Splunk HEC, settings in outputs.hec), - for stdout "
        "(the default), or a file path (one NDJSON file for every table); see docs/outputs.md",
    )
    p_run.add_argument("--output-dir", metavar="DIR", help="the same as --output ndjson:DIR")
    p_run.add_argument(
        "--loop", type=_loop_seconds, metavar="SECONDS", help="repeat every SECONDS (> 0) until interrupted"
    )
    p_run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override log_level")
    p_run.add_argument(
        "--no-progress", action="store_true", help="no live progress display, even when stderr is a terminal"
    )
    p_run.add_argument(
        "--metrics-port", type=_port, metavar="PORT", help="with --loop: serve Prometheus metrics on PORT (/metrics)"
    )
    p_run.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST", help="interface for --metrics-port (default %(default)s)"
    )
    p_run.add_argument(
        "--summary-json", metavar="FILE", help="write the run summary as JSON to FILE (replaced after every pass)"
    )
    p_run.set_defaults(handler=_cmd_run)
    p_check = sub.add_parser("check", help="permission preflight for the configured event types")
    p_check.add_argument("--config", required=True, help="parameters file (JSON or YAML)")
    p_check.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override log_level")
    p_check.set_defaults(handler=_cmd_check)
    sub.add_parser("simulate", help="run the embedded Mimecast simulator (see `simulate --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mimecast-connector`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:  # the simulator owns its options
        from connector.simulator.cli import main as simulate

        return simulate(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "metrics_port", None) is not None and not args.loop:
            parser.error("--metrics-port needs --loop (a single pass ends before a scrape could read it)")
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        result: int = args.handler(args)
        return result
    except ConnectorError as exc:
        print(safe_line(f"error: {exc}"), file=sys.stderr)  # may quote the server: masked and escaped
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
