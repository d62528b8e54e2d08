"""Event-triggered automation in the local stack, from a small template in a temporary directory:
a bus rule onto a queue with a dead-letter queue, SQS event sources (batching window, partial
batch failures, visibility timeout, redrive, a handler exception), and DynamoDB stream event
sources (filters, order, retry from the first failed record, bisection, retries exhausted to
an on-failure queue). Every function logs each invocation to a table; the tests read that log.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers.waiting import wait_for

from tools.local_stack import LocalStack, StackInfo

EVENTS_TEMPLATE = """
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    CodeUri: src/
    Environment:
      Variables:
        CALLS_TABLE: !Ref Calls
Resources:
  Calls:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 2
      MessageRetentionPeriod: 3600
      RedrivePolicy: {deadLetterTargetArn: !GetAtt WorkDLQ.Arn, maxReceiveCount: 3}
  WorkDLQ:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 1209600}
  Fragile:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy: {deadLetterTargetArn: !GetAtt FragileDLQ.Arn, maxReceiveCount: 2}
  FragileDLQ:
    Type: AWS::SQS::Queue
  StreamFailures:
    Type: AWS::SQS::Queue
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: test-bus}
  PeopleToWork:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [test.people], detail-type: [Person Event]}
      Targets: [{Id: work, Arn: !GetAtt Work.Arn}]
  QueueFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.queue
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
  FragileFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.fragile
      Events:
        Fragile:
          Type: SQS
          Properties: {Queue: !GetAtt Fragile.Arn, BatchSize: 10, MaximumBatchingWindowInSeconds: 1}
  LogFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.log
      Events:
        Ledger:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Items.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            MaximumRetryAttempts: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "LOG#"}]}}}}'
  BisectFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: consumers.bisect
      Events:
        Bisect:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Items.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 4
            MaximumBatchingWindowInSeconds: 2
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            DestinationConfig:
              OnFailure: {Type: SQS, Destination: !GetAtt StreamFailures.Arn}
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "BIS#"}]}}}}'
"""

CONSUMERS_PY = """
import json
import os
import time

import boto3

CALLS = boto3.resource("dynamodb").Table(os.environ["CALLS_TABLE"])


def _log(function, context, records, failed=()):
    CALLS.put_item(Item={"pk": f"call#{context.aws_request_id}", "function": function, "at": time.time_ns(),
                         "records": json.dumps(records), "failed": list(failed)})


def _attempt(key):
    return int(CALLS.update_item(Key={"pk": "attempt#" + key}, UpdateExpression="ADD n :one",
                                 ExpressionAttributeValues={":one": 1}, ReturnValues="UPDATED_NEW")["Attributes"]["n"])


def queue(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body.startswith("poison"):
            failures.append({"itemIdentifier": record["messageId"]})
    _log("queue", context, event["Records"], [f["itemIdentifier"] for f in failures])
    return {"batchItemFailures": failures}


def fragile(event, context):
    _log("fragile", context, event["Records"])
    if any(record["body"] == "explode" for record in event["Records"]):
        raise RuntimeError("one bad message fails the whole batch")
    return None


def log(event, context):
    failures = []
    for record in event["Records"]:
        image = record["dynamodb"]["NewImage"]
        fail_times = int(image.get("fail_times", {"N": "0"})["N"])
        if fail_times and _attempt(image["sk"]["S"]) <= fail_times:
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            break
    _log("log", context, event["Records"], [f["itemIdentifier"] for f in failures])
    return {"batchItemFailures": failures}


def bisect(event, context):
    poisoned = any("poison" in record["dynamodb"]["NewImage"] for record in event["Records"])
    _log("bisect", context, event["Records"], ["all"] if poisoned else [])
    if poisoned:
        raise ValueError("poison in the batch")
    return None
"""


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


@pytest.fixture(scope="class")
def events_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    root = tmp_path_factory.mktemp("events-stack")
    (root / "src").mkdir()
    (root / "template.yaml").write_text(EVENTS_TEMPLATE)
    (root / "src" / "consumers.py").write_text(textwrap.dedent(CONSUMERS_PY))
    with LocalStack(root / "template.yaml", port=0, moto_port=0, create_demo_key=False) as running:
        assert running.info is not None
        assert sorted(p.name for p in running._pollers) == [
            "sqs-FragileFunction-Fragile",
            "sqs-QueueFunction-Work",
            "stream-BisectFunction-Items",
            "stream-LogFunction-Items",
        ]
        yield running.info


def client(stack: StackInfo, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.moto_url, region_name="us-east-1")


def calls(stack: StackInfo, function: str) -> list[dict[str, Any]]:
    """The function's invocations, in order: records and what the function reported failed."""
    items = client(stack, "dynamodb").scan(TableName="Calls")["Items"]
    mine = [i for i in items if i.get("function", {}).get("S") == function]
    mine.sort(key=lambda item: int(item["at"]["N"]))
    return [
        {
            "records": json.loads(item["records"]["S"]),
            "failed": [f["S"] for f in item["failed"]["L"]],
            "at": int(item["at"]["N"]),
        }
        for item in mine
    ]


def drain(stack: StackInfo, queue: str) -> list[dict[str, Any]]:
    sqs = client(stack, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])


class TestEventSources:
    # ------------------------------------------------ SQS (and the bus rule onto the queue)
    def test_bus_rule_queue_poison_to_dlq(self, events_stack: StackInfo) -> None:
        sqs, events = client(events_stack, "sqs"), client(events_stack, "events")
        work = sqs.get_queue_url(QueueName="Work")["QueueUrl"]
        kind = {"kind": {"DataType": "String", "StringValue": "good"}}
        sqs.send_message_batch(
            QueueUrl=work,
            Entries=[
                {"Id": "1", "MessageBody": "m1", "MessageAttributes": kind},
                {"Id": "2", "MessageBody": "m2"},
                {"Id": "3", "MessageBody": "poison-1"},
                {"Id": "4", "MessageBody": "m3"},
            ],
        )
        sent = [
            ("other.source", "Person Event", "x"),
            ("test.people", "Other", "y"),
            ("test.people", "Person Event", "e1"),
        ]
        put = events.put_events(
            Entries=[
                {"EventBusName": "Bus", "Source": source, "DetailType": detail_type, "Detail": json.dumps({"id": id_})}
                for source, detail_type, id_ in sent
            ]
        )
        assert put["FailedEntryCount"] == 0

        dead = wait_for("poison-1 in the DLQ", lambda: drain(events_stack, "WorkDLQ"))
        assert [m["Body"] for m in dead] == ["poison-1"]

        log = calls(events_stack, "queue")
        seen = [r["body"] for call in log for r in call["records"]]
        # the messages sent in one SendMessageBatch arrive together (the batching window gathers them)
        assert {"m1", "m2", "m3", "poison-1"} <= {r["body"] for r in log[0]["records"]}
        good = [b for b in seen if not b.startswith("poison")]
        assert sorted(b for b in good if not b.startswith("{")) == ["m1", "m2", "m3"]  # each once
        [event_body] = [b for b in good if b.startswith("{")]  # only the matching event was delivered
        envelope = json.loads(event_body)
        assert set(envelope) == {"version", "id", "detail-type", "source", "account", "time", "region",
                                 "resources", "detail"}  # fmt: skip
        assert (envelope["source"], envelope["detail-type"], envelope["detail"]) == (
            "test.people", "Person Event", {"id": "e1"}
        )  # fmt: skip
        assert envelope["account"] == "123456789012"
        assert envelope["time"].endswith("Z")

        poison = [(call["at"], r) for call in log for r in call["records"] if r["body"] == "poison-1"]
        assert [int(r["attributes"]["ApproximateReceiveCount"]) for _, r in poison] == [1, 2, 3]
        gaps = [(b[0] - a[0]) / 1e9 for a, b in itertools.pairwise(poison)]
        print("poison-1 came back after", [f"{gap:.2f}s" for gap in gaps])
        assert all(gap >= 1.5 for gap in gaps), "failed messages return only after the VisibilityTimeout (2 s)"

        m1 = next(r for call in log for r in call["records"] if r["body"] == "m1")
        assert set(m1) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}  # fmt: skip
        assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
            m1["attributes"]
        )
        assert m1["messageAttributes"] == {
            "kind": {"stringValue": "good", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        }
        assert m1["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:Work"
        attributes = sqs.get_queue_attributes(
            QueueUrl=work, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    def test_handler_exception_fails_the_whole_batch(self, events_stack: StackInfo) -> None:
        sqs = client(events_stack, "sqs")
        fragile = sqs.get_queue_url(QueueName="Fragile")["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=fragile,
            Entries=[{"Id": "1", "MessageBody": "ok-1"}, {"Id": "2", "MessageBody": "explode"}],
        )
        dead: list[str] = []

        def bodies(call: dict[str, Any]) -> set[str]:
            return {r["body"] for r in call["records"]}

        def settled() -> bool:
            dead.extend(m["Body"] for m in drain(events_stack, "FragileDLQ"))
            ok_done = any("ok-1" in bodies(c) and "explode" not in bodies(c) for c in calls(events_stack, "fragile"))
            return "explode" in dead and ("ok-1" in dead or ok_done)

        wait_for("the poison message in the DLQ, the good one settled", settled)
        log = calls(events_stack, "fragile")
        # Every message that shared an invocation with the poison failed with it (the whole batch
        # failed) and reached the DLQ; a message SQS handed over in a batch of its own succeeded.
        # (Whether SQS returns both in one receive is up to SQS.)
        failed_with_poison = set().union(*(bodies(c) for c in log if "explode" in bodies(c)))
        assert sorted(dead) == sorted(failed_with_poison)
        # invoked at most maxReceiveCount (2) times, then moved to the DLQ by SQS's redrive
        assert 1 <= sum("explode" in bodies(c) for c in log) <= 2

    # ------------------------------------------------ DynamoDB streams
    def test_filter_order_and_retry_from_the_failed_record(self, events_stack: StackInfo) -> None:
        dynamodb = client(events_stack, "dynamodb")

        def put(sk: str, **extra: Any) -> dict[str, Any]:
            item = {"pk": {"S": "P1"}, "sk": {"S": sk}, **extra}
            return {"PutRequest": {"Item": item}}

        dynamodb.put_item(TableName="Items", Item={"pk": {"S": "P1"}, "sk": {"S": "OTHER#1"}})  # filtered out
        dynamodb.batch_write_item(
            RequestItems={
                "Items": [
                    put("LOG#1"),
                    put("LOG#2", blob={"B": b"\x00\xff"}),
                    put("LOG#3", fail_times={"N": "1"}),
                    put("LOG#4"),
                    put("LOG#5"),
                ]
            }
        )
        key = {"pk": {"S": "P1"}, "sk": {"S": "LOG#1"}}
        dynamodb.update_item(TableName="Items", Key=key, UpdateExpression="SET touched = :t",
                             ExpressionAttributeValues={":t": {"BOOL": True}})  # fmt: skip
        dynamodb.delete_item(TableName="Items", Key=key)  # MODIFY and REMOVE: filtered out
        dynamodb.put_item(TableName="Items", Item={"pk": {"S": "P1"}, "sk": {"S": "LOG#6"}})

        def keys(call: dict[str, Any]) -> list[str]:
            return [r["dynamodb"]["Keys"]["sk"]["S"] for r in call["records"]]

        def settled() -> bool:
            return any("LOG#6" in keys(c) and not c["failed"] for c in calls(events_stack, "log"))

        wait_for("LOG#6 processed", settled)
        log = calls(events_stack, "log")
        delivered = [keys(call) for call in log]
        print("log batches", delivered)
        first, retry = log[0], log[1]
        assert keys(first)[:5] == ["LOG#1", "LOG#2", "LOG#3", "LOG#4", "LOG#5"]  # LOG#6 too if it came in time
        assert first["failed"] == [first["records"][2]["dynamodb"]["SequenceNumber"]]
        assert keys(retry)[:3] == ["LOG#3", "LOG#4", "LOG#5"]  # from the failed record, not before it
        flat = [k for batch in delivered for k in batch]
        assert flat.count("LOG#1") == flat.count("LOG#2") == 1
        assert flat.count("LOG#3") == 2
        assert flat.count("LOG#6") == ("LOG#6" in keys(first)) + 1
        assert not [k for k in flat if not k.startswith("LOG#")]
        assert all(r["eventName"] == "INSERT" for call in log for r in call["records"])
        sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in first["records"]]
        assert sequences == sorted(sequences)

        record = first["records"][1]
        assert set(record) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                               "eventSourceARN"}  # fmt: skip
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/Items/stream/")
        assert set(record["dynamodb"]) == {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber",
                                           "SizeBytes", "StreamViewType"}  # fmt: skip
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AP8="}  # binary as base64, as Lambda sends it

    def test_bisect_then_skip_to_the_on_failure_queue(self, events_stack: StackInfo) -> None:
        dynamodb = client(events_stack, "dynamodb")
        items = [{"pk": {"S": "P2"}, "sk": {"S": f"BIS#{n}"}} for n in range(1, 5)]
        items[2]["poison"] = {"BOOL": True}
        dynamodb.batch_write_item(RequestItems={"Items": [{"PutRequest": {"Item": item}} for item in items]})

        failures = wait_for("the skipped batch on the on-failure queue", lambda: drain(events_stack, "StreamFailures"))
        log = calls(events_stack, "bisect")

        def keys(call: dict[str, Any]) -> list[str]:
            return [r["dynamodb"]["Keys"]["sk"]["S"] for r in call["records"]]

        wait_for("BIS#4 delivered", lambda: any("BIS#4" in keys(c) and not c["failed"] for c in calls(
            events_stack, "bisect")))  # fmt: skip
        log = calls(events_stack, "bisect")
        assert [(keys(call), bool(call["failed"])) for call in log] == [
            (["BIS#1", "BIS#2", "BIS#3", "BIS#4"], True),
            (["BIS#1", "BIS#2"], False),  # halves, in order
            (["BIS#3", "BIS#4"], True),
            (["BIS#3"], True),  # alone: retried MaximumRetryAttempts (1) time
            (["BIS#3"], True),
            (["BIS#4"], False),
        ]
        [failure] = failures
        info = json.loads(failure["Body"])
        poison_sequence = log[3]["records"][0]["dynamodb"]["SequenceNumber"]
        assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert info["requestContext"]["functionArn"].endswith(":function:BisectFunction")
        batch = info["DDBStreamBatchInfo"]
        assert (batch["startSequenceNumber"], batch["endSequenceNumber"], batch["batchSize"]) == (
            poison_sequence, poison_sequence, 1
        )  # fmt: skip
        assert batch["streamArn"] == log[0]["records"][0]["eventSourceARN"]


def test_stack_stops_its_pollers(tmp_path: Path) -> None:
    """Outside the class: its stack is stopped before this one starts (moto's state is per process)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "template.yaml").write_text(EVENTS_TEMPLATE)
    (tmp_path / "src" / "consumers.py").write_text(textwrap.dedent(CONSUMERS_PY))
    stack = LocalStack(tmp_path / "template.yaml", port=0, moto_port=0, create_demo_key=False)
    stack.start()
    pollers = list(stack._pollers)
    assert len(pollers) == 4 and all(p.is_alive() for p in pollers)
    stack.stop()
    assert not any(p.is_alive() for p in pollers)


def test_sqs_retry_delay_shortens_the_visibility_timeout_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the flag a failed message waits out the queue's VisibilityTimeout; with it, it is back at once."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    import threading

    from moto.server import ThreadedMotoServer

    from tools import cfn
    from tools.local_stack.pollers import SqsPoller

    class Failing:
        def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
            raise RuntimeError("always")

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        for delay, visible_after in ((None, "0"), (0, "1")):
            url = sqs.create_queue(QueueName=f"Slow{delay}", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="fails")
            source = cfn.SqsSource("Fn", f"Slow{delay}", 10, True, True)
            poller = SqsPoller(Failing(), source, url, "arn", endpoint, threading.Event(), retry_delay=delay)  # type: ignore[arg-type]
            poller._process(poller._receive())
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            assert attributes["Attributes"]["ApproximateNumberOfMessages"] == visible_after
    finally:
        server.stop()
