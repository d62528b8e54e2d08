"""Test support for signals: person events, SQS and EventBridge envelopes shaped as AWS sends
them, the table's DynamoDB stream read from moto, and the events the publisher put on the bus
(read back through a rule to a capture queue, as a consumer would receive them)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from conftest import ACCOUNT, REGION, LambdaContext, function_handler, template
from tools import cfn

TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/SegmentsTable"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:PersonEventsQueue"
BUS = "SegmentsBus"


# ------------------------------------------------------------------ person events


DEATH = {
    "obituary_id": "obit-xyz789",
    "date_of_death": "2023-12-15",
    "publication_last_update_date": "2023-12-18",
    "source": "obituary_database",
    "obituary_url": "https://news.example/obit-xyz789",
    "publication_name": "Local News",
    "confidence_score": 0.95,
}
JOB = {
    "previous_employer": "Acme",
    "previous_title": "Engineer",
    "new_employer": "Globex",
    "new_title": "CTO",
    "effective_date": "2024-01-02",
    "source": "linkedin",
    "confidence_score": 0.8,
}
MOVE = {
    "previous_location": {"city": "Leeds", "region": "West Yorkshire", "country": "GB"},
    "new_location": {"city": "York", "region": "North Yorkshire", "country": "GB"},
    "effective_date": "2024-02-01",
    "source": "postal",
    "confidence_score": 0.7,
}
DATA = {"death": DEATH, "job_change": JOB, "relocation": MOVE}


def person_event(
    kind: str,
    pid: str,
    *,
    event_id: str | None = None,
    observed_at: str = "2024-01-15T10:30:45.123456Z",
    org_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"evt-{uuid.uuid4().hex[:12]}",
        "type": kind,
        "minerva_pid": pid,
        "observed_at": observed_at,
        "org_id": org_id,
        "data": DATA.get(kind, {}) if data is None else data,
    }


def eventbridge(
    detail: dict[str, Any],
    *,
    detail_type: str = "Person Event",
    source: str = "segments.people",
) -> dict[str, Any]:
    """An EventBridge event as a rule delivers it to an SQS target (the message body)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2024-01-15T10:30:46Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def sqs_record(body: Any, *, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1705314645123",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1705314645130",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def sqs_batch(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def ingest(*bodies: Any) -> dict[str, Any]:
    """Run SignalsIngestFunction on one SQS batch of these bodies."""
    return run("SignalsIngestFunction", sqs_batch([sqs_record(b) for b in bodies]))


def run(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(function_handler(logical_id)(event, LambdaContext())))
    return result


def failures(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


# ------------------------------------------------------------------ the table's stream (moto)


@dataclass
class Stream:
    """Reads the SegmentsTable stream from moto, shaped as Lambda's event source delivers records."""

    last: dict[str, str] = field(default_factory=dict)  # shard -> last sequence number read

    def __post_init__(self) -> None:
        self.arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="SegmentsTable")["Table"][
            "LatestStreamArn"
        ]
        self.client = boto3.client("dynamodbstreams", region_name=REGION)

    def new_records(self) -> list[dict[str, Any]]:
        """Every record written since the last call, oldest first."""
        out: list[dict[str, Any]] = []
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
            if shard_id in self.last:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.last[shard_id]}
            iterator = self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **position)["ShardIterator"]
            while True:
                page = self.client.get_records(ShardIterator=iterator, Limit=1000)
                out.extend(_lambda_shaped(r, self.arn) for r in page["Records"])
                if not page["Records"]:
                    break
                self.last[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
                iterator = page["NextShardIterator"]
        return out


def _lambda_shaped(record: dict[str, Any], arn: str) -> dict[str, Any]:
    record = json.loads(json.dumps(record, default=str))
    record["eventSourceARN"] = arn
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, str):
        from datetime import datetime

        record["dynamodb"]["ApproximateCreationDateTime"] = int(datetime.fromisoformat(created).timestamp())
    return record


# ------------------------------------------------------------------ the bus, its queue, and what was published


@dataclass
class Bus:
    queues: dict[str, str]
    capture_url: str

    def published(self) -> list[dict[str, Any]]:
        """The events put on SegmentsBus by the publisher (source `segments`) since the last call."""
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=m["ReceiptHandle"])


def make_bus() -> Bus:
    """Queues and bus of template.yaml (with its rule), plus a capture rule for events out."""
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queues = cfn.create_queues(sqs, template())
    cfn.create_buses(events, template(), queues)
    capture = sqs.create_queue(QueueName="Captured")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": ["segments"]}))
    events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": arn}])
    return Bus(queues=queues, capture_url=capture)


# ------------------------------------------------------------------ fixture and API helpers


@dataclass
class Signals:
    bus: Bus
    stream: Stream

    def publish(self) -> dict[str, Any]:
        """Run PublisherFunction over the stream records written since the last call."""
        return run("PublisherFunction", {"Records": self.stream_batch()})

    def stream_batch(self) -> list[dict[str, Any]]:
        return self.stream.new_records()


@pytest.fixture(name="signals")
def signals_fixture(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bus, queues and capture rule of events out, and the table's stream (import it as
    `signals_fixture`; tests ask for `signals`)."""
    from segments import aws

    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    aws.reset()
    yield Signals(bus=make_bus(), stream=Stream())
    aws.reset()


def create_segment(api: Any, key: str, name: str) -> str:
    resp = api.post("/v2/segments/create", key=key, body={"name": name})
    assert resp.status == 200, resp.text
    return str(resp.json["segment_id"])


def add(api: Any, key: str, segment_id: str, *pids: str) -> None:
    resp = api.post("/v2/segments/members/add", key=key, body={"segment_id": segment_id, "minerva_pids": list(pids)})
    assert resp.status == 200, resp.text


def remove(api: Any, key: str, segment_id: str, *pids: str) -> None:
    resp = api.post("/v2/segments/members/remove", key=key, body={"segment_id": segment_id, "minerva_pids": list(pids)})
    assert resp.status == 200, resp.text


def _signal_sks(pk: str) -> list[str]:
    """The sort keys of a partition's SIG# items, read raw."""
    client = boto3.client("dynamodb", region_name=REGION)
    items = client.query(
        TableName="SegmentsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":s": {"S": "SIG#"}},
    )["Items"]
    return [i["sk"]["S"] for i in items]


def feed_pks(segment_id: str) -> list[str]:
    """The feed entries stored for a segment (sort keys)."""
    return _signal_sks(f"SEG#{segment_id}")


def facts(pid: str) -> list[str]:
    """The signal facts stored for a person (sort keys)."""
    return _signal_sks(f"PID#{pid}")


# ------------------------------------------------------------------ what the tests follow and read

PID = "p-a1b2c3d4e5f6"  # the person most signal tests follow


def of_type(events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    """The details of the published events of one detail-type, in order."""
    return [e["detail"] for e in events if e["detail-type"] == detail_type]


def detected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The details of the `Segment Signal Detected` events among `events`."""
    return of_type(events, "Segment Signal Detected")


def feed(signals: Signals) -> None:
    """Run SignalFeedFunction over the stream records written since the last read; none fails."""
    assert failures(run("SignalFeedFunction", {"Records": signals.stream_batch()})) == []
