"""Test support for exports: the `exports` fixture gives the template's queues and exports bucket in
moto, drives ExportQueue through ExportFunction (real-shaped SQS records), and reads a job's file
back by the presigned URL's key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import pytest

from helpers.bulk import take_messages
from helpers.signals import REGION, Signals, failures, sqs_batch, sqs_record

PART_BYTES = 300  # small parts, so a few dozen members make a multipart upload of several parts


@dataclass
class Exports:
    signals: Signals
    queue_url: str
    bucket: str

    def messages(self) -> list[dict[str, Any]]:
        """Take every message waiting on the export queue (bodies parsed)."""
        return take_messages(self.queue_url)

    def chunk(self, body: Any, *, receive_count: int = 1) -> list[str]:
        """ExportFunction on one message (through the runtime, as the local stack invokes it); the failed
        message ids."""
        from conftest import functions

        batch = sqs_batch([sqs_record(body, receive_count=receive_count)])
        return failures(json.loads(json.dumps(functions().invoke("ExportFunction", batch))))

    def run_jobs(self, *, rounds: int = 500) -> int:
        """Run the queued chunks until none is left; the chunks run."""
        done = 0
        for _ in range(rounds):
            bodies = self.messages()
            if not bodies:
                return done
            for body in bodies:
                assert self.chunk(body) == []
                done += 1
        raise AssertionError("the export did not end")

    def fetch(self, url: str) -> bytes:
        """The file a presigned URL names (moto in-process has no HTTP server: read its key)."""
        parsed = urlparse(url)
        path = unquote(parsed.path).lstrip("/")
        bucket, _, key = (
            path.partition("/") if not parsed.netloc.startswith(self.bucket + ".") else (self.bucket, "", path)
        )
        assert bucket == self.bucket, url
        return bytes(boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self) -> list[str]:
        listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(name="exports")
def exports_fixture(signals: Signals, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Export queue, bucket and worker (import it as `exports_fixture` beside `signals_fixture`)."""
    import moto.s3.models

    from conftest import template
    from segments import aws
    from tools import cfn

    buckets = cfn.create_buckets(boto3.client("s3", region_name=REGION), template())
    url = signals.bus.queues["ExportQueue"]
    monkeypatch.setenv("EXPORT_QUEUE_URL", url)
    monkeypatch.setenv("EXPORTS_BUCKET", buckets["ExportsBucket"])
    monkeypatch.setenv("EXPORT_PART_BYTES", str(PART_BYTES))
    monkeypatch.setenv("EXPORT_PAGE_SIZE", "7")
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", PART_BYTES)
    aws.reset()
    yield Exports(signals=signals, queue_url=url, bucket=buckets["ExportsBucket"])
    aws.reset()


@pytest.fixture(name="export_queue")
def export_queue_fixture(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The template's queues and buckets alone, EXPORT_QUEUE_URL and EXPORTS_BUCKET naming them (for
    route tests that start jobs without running them); the queue's URL."""
    from conftest import template
    from segments import aws
    from tools import cfn

    urls = cfn.create_queues(boto3.client("sqs", region_name=REGION), template())
    buckets = cfn.create_buckets(boto3.client("s3", region_name=REGION), template())
    monkeypatch.setenv("EXPORT_QUEUE_URL", urls["ExportQueue"])
    monkeypatch.setenv("EXPORTS_BUCKET", buckets["ExportsBucket"])
    aws.reset()
    yield urls["ExportQueue"]
    aws.reset()
