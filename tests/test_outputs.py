"""connector.sinks.outputs: `run --output` values to sinks, and the config file's `outputs` section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from connector.config import Config, output_sections
from connector.errors import ConfigError
from connector.events import Batch
from connector.sinks.base import Sink
from connector.sinks.hec import HecSink
from connector.sinks.ndjson import NdjsonSink
from connector.sinks.outputs import OUTPUT_KINDS, OutputSpec, open_outputs, parse_output
from connector.sinks.stdout import StdoutSink

TOKEN = "5b6c4d1e-0f3a-4e2b-9c8d-7a6b5c4d3e2f"


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("-", "-", "-"),
        ("ndjson:out/dir", "ndjson", "out/dir"),
        ("hec:https://splunk.example.com:8088", "hec", "https://splunk.example.com:8088"),
        ("events.ndjson", "file", "events.ndjson"),  # no kind: one NDJSON file, as --output FILE always was
        ("out/a:b.ndjson", "file", "out/a:b.ndjson"),  # a colon later in a path is no kind
        ("./kafka:x", "file", "./kafka:x"),
        ("C:\\out\\events.ndjson", "file", "C:\\out\\events.ndjson"),  # a drive letter
    ],
)
def test_an_output_value_is_a_kind_and_target_a_file_or_stdout(text: str, kind: str, target: str) -> None:
    spec = parse_output(text)
    assert (spec.kind, spec.target) == (kind, target)
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "message"), [("kafka:topic", "unknown output kind 'kafka'"), ("hec:", "needs a target")]
)
def test_an_unknown_kind_or_a_missing_target_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_output(text)
    assert caught.value.parameter == "--output"


def test_each_kind_opens_its_sink_in_order_with_its_settings(tmp_path: Path) -> None:
    specs = [parse_output(v) for v in (f"ndjson:{tmp_path}/d", f"{tmp_path}/one.ndjson", "-", "hec:http://127.0.0.1:9")]
    sinks = open_outputs(specs, lambda: {"hec": {"token": TOKEN, "index": "mc"}})
    assert [type(s) for s in sinks] == [NdjsonSink, NdjsonSink, StdoutSink, HecSink]
    hec = sinks[3]
    assert isinstance(hec, HecSink) and hec.settings.index == "mc" and hec.url == "http://127.0.0.1:9"
    for sink in sinks[:3]:
        sink.close()
    hec._http.close()


def test_adding_a_kind_is_one_table_entry(tmp_path: Path) -> None:
    seen: list[tuple[str, Mapping[str, Any]]] = []

    class Parquet:
        def write(self, batch: Batch) -> None: ...
        def sync(self) -> None: ...
        def close(self) -> None: ...

    def open_parquet(target: str, settings: Mapping[str, Any]) -> Sink:
        seen.append((target, settings))
        return Parquet()

    kinds = {**OUTPUT_KINDS, "parquet": open_parquet}
    spec = parse_output("parquet:s3://lake/ext", kinds)
    (sink,) = open_outputs([spec], lambda: {"parquet": {"compression": "zstd"}}, kinds)
    assert isinstance(sink, Parquet) and seen == [("s3://lake/ext", {"compression": "zstd"})]


def test_a_duplicate_output_an_unknown_section_or_a_bad_setting_is_refused_before_anything_is_open(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "d"
    with pytest.raises(ConfigError, match="given twice"):
        open_outputs([OutputSpec("ndjson", str(folder))] * 2, dict)
    with pytest.raises(ConfigError, match=r"Unknown output section 'outputs\.splunk'") as caught:
        open_outputs([OutputSpec("ndjson", str(folder))], lambda: {"splunk": {}})
    assert caught.value.parameter == "outputs.splunk"
    with pytest.raises(ConfigError) as caught:
        open_outputs([OutputSpec("hec", "http://127.0.0.1:9")], lambda: {"hec": {"token": TOKEN, "acks": True}})
    assert caught.value.parameter == "outputs.hec.acks" and "did you mean 'outputs.hec.ack'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        open_outputs([OutputSpec("ndjson", str(folder))], lambda: {"ndjson": {"fsync": False}})
    assert caught.value.parameter == "outputs.ndjson.fsync"


def test_the_file_and_stdout_forms_do_not_read_the_outputs_section() -> None:
    def unreadable() -> Mapping[str, Mapping[str, object]]:
        raise AssertionError("read")

    (sink,) = open_outputs([parse_output("-")], unreadable)
    assert isinstance(sink, StdoutSink)


def test_the_outputs_section_is_no_parameter_config_skips_it_and_output_sections_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"client_key": "k", "client_secret": "x" * 20, "outputs": {"hec": {"ack": True}}}))
    assert Config.from_file(path).client_key == "k"
    assert output_sections(path) == {"hec": {"ack": True}}
    with pytest.raises(ConfigError) as caught:  # the host's door: outputs are the CLI's, not a parameter
        Config.from_parameters({"client_key": "k", "client_secret": "x" * 20, "outputs": {}})
    assert caught.value.parameter == "outputs"
    path.write_text(json.dumps({"outputs": {"hec": "on"}}))
    with pytest.raises(ConfigError, match=r"'outputs\.hec' must be an object") as caught:
        output_sections(path)
    assert caught.value.parameter == "outputs.hec"
    path.write_text(json.dumps({"outputs": ["hec"]}))
    with pytest.raises(ConfigError) as caught:
        output_sections(path)
    assert caught.value.parameter == "outputs"
    path.write_text(json.dumps({"client_key": "k"}))
    assert output_sections(path) == {}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ndjson:{dir}", "ndjson:{dir}/"),
        ("ndjson:{dir}", "ndjson:{dir}/../out"),
        ("{dir}/all.ndjson", "{dir}/./all.ndjson"),
        ("hec:https://Splunk.example.com:443/", "hec:https://splunk.example.com/services/collector"),
        ("parquet:s3://lake/prefix/", "parquet:s3://lake//prefix"),
    ],
)
def test_the_same_output_spelled_two_ways_is_refused_before_anything_is_open(
    tmp_path: Path, first: str, second: str
) -> None:
    """``ndjson:DIR`` and ``ndjson:DIR/`` would open two sinks appending every event twice to the same files."""
    folder = tmp_path / "out"
    specs = [parse_output(first.format(dir=folder)), parse_output(second.format(dir=folder))]
    with pytest.raises(ConfigError, match="write to the same place") as caught:
        open_outputs(specs, lambda: {"hec": {"token": TOKEN}})
    assert caught.value.parameter == "--output" and not folder.exists()


def test_two_different_folders_are_two_outputs(tmp_path: Path) -> None:
    specs = [parse_output(f"ndjson:{tmp_path / 'a'}"), parse_output(f"ndjson:{tmp_path / 'b'}")]
    sinks = open_outputs(specs, dict)
    assert len(sinks) == 2
    for sink in sinks:
        sink.close()
