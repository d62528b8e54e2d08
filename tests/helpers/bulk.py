"""Test support for bulk deletes: the `bulk` fixture drives BulkDeleteQueue through
BulkDeleteFunction (real-shaped SQS records), beside the rule engine's rig (the table's stream
through RuleMembershipFunction)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from helpers.rules import Rig
from helpers.signals import REGION, failures, run, sqs_batch, sqs_record


def take_messages(queue_url: str) -> list[dict[str, Any]]:
    """Take every message waiting on a queue (bodies parsed)."""
    sqs = boto3.client("sqs", region_name=REGION)
    found = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return found
        for m in got:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@dataclass
class Bulk:
    rig: Rig
    queue_url: str

    def messages(self) -> list[dict[str, Any]]:
        """Take every message waiting on the bulk delete queue (bodies parsed)."""
        return take_messages(self.queue_url)

    def chunk(self, body: Any, *, receive_count: int = 1) -> list[str]:
        """BulkDeleteFunction on one message; the failed message ids."""
        return failures(run("BulkDeleteFunction", sqs_batch([sqs_record(body, receive_count=receive_count)])))

    def run_jobs(self, *, rounds: int = 200) -> int:
        """Run the queued chunks until none is left; the chunks run."""
        done = 0
        for _ in range(rounds):
            bodies = self.messages()
            if not bodies:
                return done
            for body in bodies:
                assert self.chunk(body) == []
                done += 1
        raise AssertionError("the bulk delete did not end")


@pytest.fixture(name="bulk")
def bulk_fixture(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Bulk delete queue and worker (import it as `bulk_fixture` beside `rig_fixture` and `signals_fixture`)."""
    from segments import aws

    url = rig.signals.bus.queues["BulkDeleteQueue"]
    monkeypatch.setenv("BULK_DELETE_QUEUE_URL", url)
    aws.reset()
    yield Bulk(rig=rig, queue_url=url)
    aws.reset()


@pytest.fixture(name="bulk_queue")
def bulk_queue_fixture(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The template's queues alone, BULK_DELETE_QUEUE_URL naming the bulk delete queue and
    MAILCHIMP_SYNC_QUEUE_URL the Mailchimp sync queue (for route tests that queue a job without
    running it); the bulk delete queue's URL."""
    from conftest import template
    from segments import aws
    from tools import cfn

    urls = cfn.create_queues(boto3.client("sqs", region_name=REGION), template())
    monkeypatch.setenv("BULK_DELETE_QUEUE_URL", urls["BulkDeleteQueue"])
    monkeypatch.setenv("MAILCHIMP_SYNC_QUEUE_URL", urls["MailchimpSyncQueue"])  # all/sync_mailchimp queues there
    aws.reset()
    yield urls["BulkDeleteQueue"]
    aws.reset()
