"""Test support for the Mailchimp audience sync: the `mailchimp` fixture is the bus and stream of
`signals` (template rules included, so MailchimpSyncRule delivers membership changes to its queue),
a local Mailchimp server with two audiences, each org's credentials in (moto's) Secrets Manager, and
a driver running MailchimpSyncFunction on what reaches MailchimpSyncQueue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from helpers.signals import REGION, Signals, failures, run, sqs_batch, sqs_record
from tools.mailchimp_server import MailchimpServer

AUDIENCES = {"aud-a": "key-a-us6", "aud-b": "key-b-us9"}


@dataclass
class Sync:
    signals: Signals
    server: MailchimpServer
    queue_url: str
    sleeps: list[float] = field(default_factory=list)

    def messages(self) -> list[str]:
        """Take every message waiting on MailchimpSyncQueue (bodies as sent)."""
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return found
            for m in got:
                found.append(m["Body"])
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def deliver(self, bodies: list[str]) -> list[str]:
        """MailchimpSyncFunction on one batch; the failed message ids."""
        return failures(run("MailchimpSyncFunction", sqs_batch([sqs_record(b) for b in bodies])))

    def settle(self, rounds: int = 20) -> int:
        """Publish what the stream holds (PublisherFunction: events onto the bus, the rule onto the
        queue), then run the function on the queue until it is empty; the batches run."""
        self.signals.publish()
        ran = 0
        for _ in range(rounds):
            bodies = self.messages()
            if not bodies:
                return ran
            for start in range(0, len(bodies), 10):
                assert self.deliver(bodies[start : start + 10]) == []
                ran += 1
        raise AssertionError("the sync queue did not empty")

    def calls(self, method: str, suffix: str = "") -> int:
        """Requests the Mailchimp server got with this method whose path matches `suffix` (a regex tail)."""
        import re

        return sum(m == method and re.search(suffix + "$", p) is not None for m, p in self.server.requests)


def set_credentials(org_id: str, audience: str, *, status_if_new: Any = "transactional") -> None:
    from segments.mailchimp import credentials

    credentials.save(org_id, credentials.Credentials(AUDIENCES[audience], audience, status_if_new))


@pytest.fixture(name="mailchimp")
def mailchimp_fixture(signals: Signals, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    """(import it as `mailchimp_fixture` beside `signals_fixture`)"""
    from segments import aws

    with MailchimpServer(audiences=AUDIENCES, stop_after=600) as server:
        url = signals.bus.queues["MailchimpSyncQueue"]
        monkeypatch.setenv("MAILCHIMP_BASE_URL", server.base_url)
        monkeypatch.setenv("MAILCHIMP_SYNC_QUEUE_URL", url)
        monkeypatch.setenv("MAILCHIMP_SYNC_DELAY_SECONDS", "0")
        aws.reset()
        sync = Sync(signals=signals, server=server, queue_url=url)
        monkeypatch.setattr(aws, "backoff", lambda attempt, base=0.05, cap=2.0, **k: sync.sleeps.append(base))
        yield sync
    aws.reset()


def membership_event(org_id: str, segment_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "source": "segments",
            "detail-type": "Segment Membership Changed",
            "detail": {"org_id": org_id, "segment_id": segment_id, "added": [], "removed": []},
        }
    )
