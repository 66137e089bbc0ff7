"""ParquetSink: the Security Lake layout, sorted zstd files, rolls, temp-then-rename on sync, S3 (moto), config."""

from __future__ import annotations

import contextlib
import re
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from parquet_events import T0, email_events

from connector.errors import ConfigError, SinkError
from connector.events import Batch
from connector.sinks.arrow_schema import arrow_schema
from connector.sinks.parquet import ParquetSink, open_sink

REGION = "eu-west-1"
ACCOUNT = "123456789012"
DAY = 86_400_000
LAYOUT = re.compile(
    r"ext/(?P<source>[^/]+)/region=eu-west-1/accountId=123456789012/eventDay=(?P<day>\d{8})/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.parquet"
)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def events_at(table: str, times: list[int]) -> list[dict[str, Any]]:
    out = []
    for number, at in enumerate(times):
        event = email_events()[table]
        event["time"] = at
        event["metadata"]["uid"] = f"uid-{number}"
        out.append(event)
    return out


def batch(table: str, events: list[dict[str, Any]]) -> Batch:
    return Batch(table, None, events, None)


def sink(root: Path, **options: Any) -> ParquetSink:
    return ParquetSink(str(root), region=REGION, account_id=ACCOUNT, **options)


def finals(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_files_follow_the_layout_one_source_per_table_and_one_folder_per_utc_day(tmp_path: Path) -> None:
    out = sink(tmp_path, source_names={"detection_finding": "mimecast_impersonation"})
    out.write(batch("email_url_activity", events_at("email_url_activity", [T0, T0 + DAY])))
    out.write(batch("detection_finding", events_at("detection_finding", [T0])))
    out.close()
    keys = out.published()
    assert len(keys) == 3 and all(LAYOUT.fullmatch(key) for key in keys), keys
    found = {(m["source"], m["day"]) for m in (LAYOUT.fullmatch(key) for key in keys) if m}
    assert found == {
        ("mimecast_email_url_activity", "20260615"),
        ("mimecast_email_url_activity", "20260616"),
        ("mimecast_impersonation", "20260615"),
    }
    assert sorted(str(p.relative_to(tmp_path)) for p in finals(tmp_path)) == sorted(keys)


def test_rows_are_sorted_by_time_zstd_compressed_and_keep_the_tables_schema(tmp_path: Path) -> None:
    out = sink(tmp_path)
    times = [T0 + 5000, T0 + 1000, T0 + 3000]
    out.write(batch("email_activity", events_at("email_activity", times[:2])))
    out.write(batch("email_activity", events_at("email_activity", times[2:])))
    out.close()
    (path,) = finals(tmp_path)
    parquet = pq.ParquetFile(path)
    assert parquet.read().column("time").to_pylist() == sorted(times)
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    assert parquet.schema_arrow.equals(arrow_schema("email_activity"))


def test_two_files_from_different_batches_have_identical_schemas(tmp_path: Path) -> None:
    out = sink(tmp_path)
    sparse = events_at("email_activity", [T0])
    del sparse[0]["unmapped"], sparse[0]["src_endpoint"], sparse[0]["email"]["to"]
    out.write(batch("email_activity", sparse))
    out.sync()
    out.write(batch("email_activity", events_at("email_activity", [T0 + 1])))
    out.close()
    first, second = (pq.read_schema(path) for path in finals(tmp_path))
    assert len(finals(tmp_path)) == 2
    assert first.equals(second)


def test_an_event_earlier_than_the_open_file_starts_a_new_file_so_each_file_stays_sorted(tmp_path: Path) -> None:
    out = sink(tmp_path, buffer_rows=2)
    out.write(batch("email_activity", events_at("email_activity", [T0 + 10, T0 + 20])))  # flushed: buffer full
    out.write(batch("email_activity", events_at("email_activity", [T0 + 5, T0 + 30])))  # starts before T0 + 20
    out.close()
    assert out.stats.order_rolls == 1
    for path in finals(tmp_path):
        times = pq.read_table(path).column("time").to_pylist()
        assert times == sorted(times)
    assert sum(pq.read_metadata(p).num_rows for p in finals(tmp_path)) == 4


def test_a_table_keeps_at_most_two_days_open_and_closes_the_one_written_longest_ago(tmp_path: Path) -> None:
    # each open writer of a wide OCSF class holds ~2 MB: a catch-up over many days must not keep them all open
    clock, day = Clock(), 86_400_000
    out = sink(tmp_path, buffer_rows=1, clock=clock)
    for number in range(5):  # five days of one table, in time order, then another table on the last day
        clock.now += 1
        out.write(batch("email_activity", events_at("email_activity", [T0 + number * day])))
        assert len([key for key in out._open if key[0] == "email_activity"]) <= 2
    out.write(batch("detection_finding", events_at("detection_finding", [T0 + 4 * day])))
    assert sorted(out._open) == [("detection_finding", _day(T0 + 4 * day)), ("email_activity", _day(T0 + 3 * day)),
                                 ("email_activity", _day(T0 + 4 * day))]  # fmt: skip
    assert not finals(tmp_path)  # the closed days wait for sync, as every part does
    out.close()
    assert len(finals(tmp_path)) == 6 and sum(pq.read_metadata(p).num_rows for p in finals(tmp_path)) == 6


def test_an_s3_spool_is_a_private_folder_of_its_own_and_its_parts_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fixed name in the shared temporary folder could be planted by another local user (mode 777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / "mimecast-parquet-spool"
    planted.mkdir()
    planted.chmod(0o777)
    out = ParquetSink("s3://lake-bucket/prefix", region=REGION, account_id=ACCOUNT, buffer_rows=1)
    out.write(batch("email_activity", events_at("email_activity", [T0])))
    assert not list(planted.iterdir())
    (spool,) = [p for p in tmp_path.iterdir() if p != planted]
    assert spool.name.startswith("mimecast-parquet-spool-") and stat.S_IMODE(spool.stat().st_mode) == 0o700
    parts = list(spool.glob(".*.parquet.tmp"))
    assert parts and {stat.S_IMODE(p.stat().st_mode) for p in parts} == {0o600}
    out._closed.clear()  # nothing to upload to here: drop the parts, as close() does after a failed sync
    out._open.clear()
    with contextlib.suppress(SinkError):
        out.close()
    assert not spool.exists()  # its own spool goes with it


def test_a_file_is_rolled_by_size(tmp_path: Path) -> None:
    out = sink(tmp_path, buffer_rows=1, max_file_bytes=1)  # every row group fills the file
    for at in (T0, T0 + 1, T0 + 2):
        out.write(batch("email_activity", events_at("email_activity", [at])))
    out.close()
    assert len(finals(tmp_path)) == 3


def test_a_file_is_rolled_by_age_and_published_at_the_next_sync_only(tmp_path: Path) -> None:
    clock = Clock()
    out = sink(tmp_path, max_file_age_seconds=60, clock=clock)
    out.write(batch("email_activity", events_at("email_activity", [T0])))
    clock.now += 30
    out.write(batch("email_activity", events_at("email_activity", [T0 + 1])))
    assert list(tmp_path.rglob(".*.parquet.tmp")) == []  # still buffered: nothing written yet
    clock.now += 31
    out.write(batch("email_activity", events_at("email_activity", [T0 + 2])))  # the part is 61 s old: rolled
    assert finals(tmp_path) == []  # closed, but not published before sync
    out.sync()
    assert [pq.read_metadata(p).num_rows for p in finals(tmp_path)] == [3]
    out.close()


def test_nothing_is_visible_before_sync_and_after_it_every_file_is_whole(tmp_path: Path) -> None:
    out = sink(tmp_path, buffer_rows=1)
    out.write(batch("email_activity", events_at("email_activity", [T0, T0 + 1])))
    temps = list(tmp_path.rglob(".*.parquet.tmp"))
    assert len(temps) == 1 and finals(tmp_path) == []
    with pytest.raises(Exception):  # noqa: B017 - the footer is written on close: the temp file is not yet Parquet
        pq.read_metadata(temps[0])
    # the process dies here (no sync): no final file exists, only a temporary name nothing reads
    out.sync()
    assert list(tmp_path.rglob(".*.parquet.tmp")) == []
    (path,) = finals(tmp_path)
    assert pq.read_table(path).num_rows == 2
    out.close()


def test_a_failed_publish_is_a_sink_error_raised_again_by_every_later_sync(tmp_path: Path) -> None:
    out = sink(tmp_path)
    out.write(batch("email_activity", events_at("email_activity", [T0])))
    blocker = tmp_path / "ext"
    out.sync()  # creates ext/...; now make the next folder impossible to create
    out.write(batch("email_activity", events_at("email_activity", [T0 + DAY])))
    (
        blocker / "mimecast_email_activity" / "region=eu-west-1" / "accountId=123456789012" / "eventDay=20260616"
    ).write_text("")
    with pytest.raises(SinkError, match="parquet output: cannot create"):
        out.sync()
    with pytest.raises(SinkError, match="parquet output: cannot create"):
        out.sync()


def test_an_unknown_table_is_a_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="no table 'nope'"):
        sink(tmp_path).write(batch("nope", [{"time": T0}]))


# -- configuration ---------------------------------------------------------------------------------------------

GOOD = {"region": REGION, "account_id": ACCOUNT}


@pytest.mark.parametrize(
    ("settings", "parameter"),
    [
        ({"account_id": ACCOUNT}, "outputs.parquet.region"),
        ({"region": REGION}, "outputs.parquet.account_id"),
        ({**GOOD, "region": "Europe"}, "outputs.parquet.region"),
        ({**GOOD, "account_id": "a/b"}, "outputs.parquet.account_id"),
        ({**GOOD, "max_file_bytes": 10}, "outputs.parquet.max_file_bytes"),
        ({**GOOD, "max_file_bytes": True}, "outputs.parquet.max_file_bytes"),
        ({**GOOD, "max_file_age_seconds": 0}, "outputs.parquet.max_file_age_seconds"),
        ({**GOOD, "source_names": {"nope": "x"}}, "outputs.parquet.source_names.nope"),
        ({**GOOD, "source_names": {"authentication": "../x"}}, "outputs.parquet.source_names.authentication"),
        ({**GOOD, "role_arn": "admin"}, "outputs.parquet.role_arn"),
        ({**GOOD, "external_id": "abc"}, "outputs.parquet.external_id"),
        ({**GOOD, "colour": "red"}, "outputs.parquet.colour"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_it(tmp_path: Path, settings: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_sink(str(tmp_path), settings)
    assert caught.value.parameter == parameter
    assert parameter in str(caught.value)


def test_s3_only_settings_are_refused_for_a_local_folder_and_a_bad_bucket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"outputs\.parquet\.endpoint_url: expected only for an s3:// target"):
        open_sink(str(tmp_path), {**GOOD, "endpoint_url": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="is no S3 bucket name"):
        open_sink("s3://Bad_Bucket/x", GOOD)


def test_open_sink_applies_the_settings(tmp_path: Path) -> None:
    out = open_sink(str(tmp_path), {**GOOD, "source_names": {"email_activity": "mc_mail/1.0"}, "buffer_rows": 7})
    out.write(batch("email_activity", events_at("email_activity", [T0])))
    out.close()
    (key,) = out.published()
    assert key.startswith("ext/mc_mail/1.0/region=eu-west-1/accountId=123456789012/eventDay=20260615/")


# -- S3, against moto's server on 127.0.0.1 ----------------------------------------------------------------------

BUCKET = "aws-security-data-lake-eu-west-1-test"
EXTERNAL_ID = "sl-external-id-5f9c"
ROLE = "arn:aws:iam::123456789012:role/AmazonSecurityLake-Provider-mimecast"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """One moto server (its state is per process) on a free port of 127.0.0.1, with the lake bucket."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        }.items():
            patch.setenv(name, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        boto3.client("s3", region_name=REGION, endpoint_url=url).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture
def moto_url(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_server


def test_s3_upload_with_an_assumed_role_and_external_id(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assumed: list[dict[str, Any]] = []
    original = boto3.session.Session.client

    def client(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "sts":
            made.meta.events.register(
                "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params)
            )
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    settings = {
        **GOOD,
        "role_arn": ROLE,
        "external_id": EXTERNAL_ID,
        "endpoint_url": moto_url,
        "spool_dir": str(tmp_path),
    }
    out = open_sink(f"s3://{BUCKET}/lake", settings)
    assert EXTERNAL_ID not in repr(out)
    out.write(batch("email_activity", events_at("email_activity", [T0 + 2, T0])))
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/").get("KeyCount") == 0  # nothing before sync
    out.sync()
    (key,) = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/")["Contents"]]
    assert key == f"lake/{out.published()[0]}" and LAYOUT.fullmatch(key.removeprefix("lake/"))
    body = tmp_path / "downloaded.parquet"
    s3.download_file(BUCKET, key, str(body))
    assert pq.read_table(body).column("time").to_pylist() == [T0, T0 + 2]
    assert [(a["RoleArn"], a["ExternalId"]) for a in assumed] == [(ROLE, EXTERNAL_ID)]
    assert list(tmp_path.glob(".*.parquet.tmp")) == []  # the spool is emptied after the upload
    out.close()
    assert EXTERNAL_ID not in caplog.text


def test_an_s3_upload_that_fails_is_a_sink_error_without_the_external_id(moto_url: str, tmp_path: Path) -> None:
    settings = {
        **GOOD,
        "role_arn": ROLE,
        "external_id": EXTERNAL_ID,
        "endpoint_url": moto_url,
        "spool_dir": str(tmp_path),
    }
    out = open_sink("s3://no-such-bucket-here", settings)
    out.write(batch("email_activity", events_at("email_activity", [T0])))
    with pytest.raises(
        SinkError, match="cannot upload s3://no-such-bucket-here/ext/mimecast_email_activity/"
    ) as caught:
        out.sync()
    assert "NoSuchBucket" in str(caught.value) and EXTERNAL_ID not in str(caught.value)
    with pytest.raises(SinkError):
        out.close()
    assert list(tmp_path.glob(".*.parquet.tmp")) == []  # close drops what it could not publish
