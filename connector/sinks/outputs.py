"""Choosing outputs: ``run --output KIND:TARGET`` (repeatable) to the sinks, with each kind's settings from the file.

An output is written ``KIND:TARGET`` for a kind in ``OUTPUT_KINDS`` (``ndjson:DIR``: one ``<table>.ndjson`` per
table in DIR; ``hec:URL``: Splunk HTTP Event Collector; ``parquet:DIR-or-s3://URL``: the Amazon Security Lake
layout), ``-`` for the standard output, or anything else for one
NDJSON file holding every table (what ``--output FILE`` always meant). A value that starts with a word and a colon
but names no known kind (``kafka:x``) is refused rather than taken for a file name: write ``./kafka:x`` for that.

Adding a kind is one entry in ``OUTPUT_KINDS``: a function of the target and the kind's settings (the
``outputs.<kind>`` object of the config file, ``{}`` when absent) that returns a ``Sink`` and raises ``ConfigError``
naming the bad setting (``outputs.<kind>.<key>``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from connector.errors import ConfigError
from connector.sinks import hec
from connector.sinks.base import Sink
from connector.sinks.ndjson import NdjsonSink
from connector.sinks.stdout import StdoutSink

__all__ = ["OUTPUT_KINDS", "OutputFactory", "OutputSpec", "open_outputs", "parse_output"]

OutputFactory = Callable[[str, Mapping[str, Any]], Sink]


def _parquet(target: str, settings: Mapping[str, Any]) -> Sink:
    # imported on demand: pyarrow is an optional extra, and costs a start-up nobody else should pay
    from connector.sinks.parquet import open_sink

    return open_sink(target, settings)


def _ndjson_folder(target: str, settings: Mapping[str, Any]) -> Sink:
    if settings:
        name = f"outputs.ndjson.{next(iter(settings))}"
        raise ConfigError(f"Unknown parameter '{name}': ndjson outputs have no settings.", parameter=name)
    return NdjsonSink(target, per_table=True)


OUTPUT_KINDS: Mapping[str, OutputFactory] = MappingProxyType(
    {
        "ndjson": _ndjson_folder,
        "hec": hec.open_sink,
        "parquet": _parquet,
    }
)
"""``--output KIND:TARGET`` -> the function that opens that sink (see the module docstring)."""

_KIND = re.compile(r"([a-z][a-z0-9_]*):(.*)", re.DOTALL)
STDOUT = "-"
FILE = "file"


@dataclass(frozen=True)
class OutputSpec:
    """One ``--output`` value: ``kind`` (a key of ``OUTPUT_KINDS``, ``"-"`` or ``"file"``) and its target."""

    kind: str
    target: str

    def __str__(self) -> str:
        if self.kind == STDOUT:
            return STDOUT
        return self.target if self.kind == FILE else f"{self.kind}:{self.target}"


def parse_output(text: str, kinds: Mapping[str, OutputFactory] = OUTPUT_KINDS) -> OutputSpec:
    """Read one ``--output`` value (see the module docstring).

    Raises:
        ConfigError: an unknown ``kind:``, or a kind without a target; ``parameter`` is ``--output``.
    """
    if text == STDOUT:
        return OutputSpec(STDOUT, STDOUT)
    match = _KIND.fullmatch(text)
    if match is None or len(match.group(1)) == 1:  # a path (C:\out.ndjson: a drive letter, not a kind)
        return OutputSpec(FILE, text)
    kind, target = match.group(1), match.group(2)
    if kind not in kinds:
        raise ConfigError(
            f"--output {text}: unknown output kind {kind!r}; known: {', '.join(sorted(kinds))}, - (standard "
            f"output), or a file path (write ./{text} for a file of that name).",
            parameter="--output",
        )
    if not target.strip():
        raise ConfigError(f"--output {text}: {kind}: needs a target after the colon.", parameter="--output")
    return OutputSpec(kind, target)


def _destination(spec: OutputSpec) -> tuple[str, str]:
    """Where ``spec`` writes, spelled one way: ``ndjson:DIR``, ``ndjson:DIR/`` and ``ndjson:./DIR`` are one folder
    (two sinks there would append every event twice to the same files), and so are the spellings of one HEC URL
    (scheme and host in any case, the default port, a trailing slash or ``/services/collector``) and of one S3
    prefix."""
    kind, target = spec.kind, spec.target
    if kind in (FILE, "ndjson") or (kind == "parquet" and not target.startswith("s3://")):
        return kind, os.path.realpath(target)
    if kind == "parquet":
        bucket, _, prefix = target[len("s3://") :].partition("/")
        return kind, f"s3://{bucket}/{prefix.strip('/')}"
    if kind == "hec":
        parts = urlsplit(hec.validate_url(target))  # a bad URL is refused here as it would be when opened
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        return kind, f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"
    return kind, target


def open_outputs(
    specs: Sequence[OutputSpec],
    sections: Callable[[], Mapping[str, Mapping[str, object]]],
    kinds: Mapping[str, OutputFactory] = OUTPUT_KINDS,
) -> list[Sink]:
    """Open the sink of every output, in order (the runner syncs them in this order).

    Args:
        specs: The parsed ``--output`` values.
        sections: Reads the config file's ``outputs`` object (``connector.config.output_sections``); called only
            when an output of ``kinds`` is chosen, so a file or standard-output run does not read it twice.
        kinds: ``OUTPUT_KINDS`` (tests pass their own).

    Raises:
        ConfigError: the same output twice (also spelled two ways: the same folder, file, HEC URL or S3
            prefix), the standard output twice, an ``outputs.<name>`` section for no known
            kind, or a bad setting; sinks already opened are closed first.
    """
    seen: dict[tuple[str, str], OutputSpec] = {}
    for spec in specs:
        destination = _destination(spec)
        first = seen.get(destination)
        if first is None:
            seen[destination] = spec
            continue
        if first == spec:
            raise ConfigError(f"--output {spec} is given twice; each output once.", parameter="--output")
        raise ConfigError(
            f"--output {first} and --output {spec} write to the same place ({destination[1]}); each output once.",
            parameter="--output",
        )
    settings: Mapping[str, Mapping[str, object]] = {}
    if any(spec.kind in kinds for spec in specs):
        settings = sections()
        unknown = [name for name in settings if name not in kinds]
        if unknown:
            raise ConfigError(
                f"Unknown output section 'outputs.{unknown[0]}'; known: "
                + ", ".join(f"outputs.{name}" for name in sorted(kinds))
                + ".",
                parameter=f"outputs.{unknown[0]}",
            )
    sinks: list[Sink] = []
    try:
        for spec in specs:
            if spec.kind == STDOUT:
                sinks.append(StdoutSink())
            elif spec.kind == FILE:
                sinks.append(NdjsonSink(spec.target))
            else:
                sinks.append(kinds[spec.kind](spec.target, settings.get(spec.kind, {})))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks
