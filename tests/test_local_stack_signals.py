"""Signals through the local stack on the project's template (real queue poller, stream pollers and
filters): a death that arrives while its segment is deleted is held, and after the restore the
segment serves it and the publisher puts it on the bus once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers.http import call
from helpers.waiting import wait_for

from tools.local_stack import LocalStack, StackInfo

ROOT = Path(__file__).resolve().parents[1]
PID = "p-restored01"


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


def test_a_death_while_deleted_is_served_and_published_after_the_restore() -> None:
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        stack: StackInfo | None = running.info
        assert stack is not None and stack.demo_key
        aws = {"endpoint_url": stack.moto_url, "region_name": "us-east-1"}
        sqs, dynamodb, events = (
            boto3.client("sqs", **aws),
            boto3.client("dynamodb", **aws),
            boto3.client("events", **aws),
        )
        # what the publisher puts on the bus, caught by a rule of our own
        capture = sqs.create_queue(QueueName="CapturedSignals")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["segments"], "detail-type": ["Segment Signal Detected"]}
        events.put_rule(Name="capture-signals", EventBusName="SegmentsBus", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="capture-signals", EventBusName="SegmentsBus", Targets=[{"Id": "c", "Arn": arn}])

        minerva = {"x-api-key": stack.demo_key, "content-type": "application/json"}
        created = call(stack.api_url, "POST", "/v2/segments/create", {"name": "Paused for a while"}, minerva)
        assert created.status == 200, created.body
        sid = created.json["segment_id"]
        body = {"segment_id": sid, "minerva_pids": [PID]}
        assert call(stack.api_url, "POST", "/v2/segments/members/add", body, minerva).status == 200
        assert call(stack.api_url, "DELETE", f"/v2/segments/{sid}", None, minerva).status == 200

        death = {
            "event_id": "evt-local-restore",
            "type": "death",
            "minerva_pid": PID,
            "observed_at": "2024-01-15T10:30:45.123456Z",
            "data": {"obituary_id": "obit-1"},
        }
        queue = sqs.get_queue_url(QueueName="PersonEventsQueue")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(death))

        def held() -> list[Any]:
            return list(
                dynamodb.query(
                    TableName="SegmentsTable",
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :held)",
                    ExpressionAttributeValues={":pk": {"S": f"SEG#{sid}"}, ":held": {"S": "HELD#"}},
                )["Items"]
            )

        wait_for("the death held for the deleted segment", held)
        bearer = {"Authorization": f"Bearer {stack.demo_key}"}
        restored = call(
            stack.api_url, "POST", f"/segments/v2/demo/segment/{sid.replace('-', '')}/restore", None, bearer
        )
        assert restored.status == 200, restored.body

        def served() -> list[str]:
            reply = call(stack.api_url, "GET", f"/v2/segments/signals/deaths?segment_id={sid}", None, minerva)
            assert reply.status == 200, reply.body
            return [r["minerva_pid"] for r in reply.json["results"]]

        assert wait_for("the death served after the restore", served) == [PID]
        wait_for("the held entry released", lambda: not held())

        published: list[dict[str, Any]] = []

        def detected() -> list[dict[str, Any]]:
            for m in sqs.receive_message(QueueUrl=capture, MaxNumberOfMessages=10).get("Messages", []):
                published.append(json.loads(m["Body"])["detail"])
                sqs.delete_message(QueueUrl=capture, ReceiptHandle=m["ReceiptHandle"])
            return published

        [signal] = wait_for("the signal published", detected)
        assert (signal["segment_id"], signal["minerva_pid"], signal["signal_type"]) == (sid, PID, "death")
