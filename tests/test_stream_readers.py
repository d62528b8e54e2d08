"""The table's stream has at most two readers: RuleMembershipFunction, and StreamDispatcherFunction,
which forwards each change to the FIFO queue (with its own DLQ) of every concern that wants it
(PublisherFunction, SignalFeedFunction). Through a queue a concern gets the same typed changes, in
its segment's order, as it got from the stream."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from helpers.signals import (
    add,
    create_segment,
    failures,
    ingest,
    person_event,
    remove,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
)

from conftest import REGION, Api, Org, template
from segments import queues
from segments.adapters import dynamodb_stream, stream_dispatch
from segments.adapters.dynamodb_stream import StreamChange
from segments.store import keys
from tools import cfn

PID = "p-a1b2c3d4e5f6"
MAX_READERS = 2  # DynamoDB Streams: at most two concurrent readers per shard


def test_the_table_stream_has_at_most_two_readers() -> None:
    readers = [s for s in cfn.stream_sources(template()) if s.table == "SegmentsTable" and s.enabled]
    assert len(readers) <= MAX_READERS, [s.function for s in readers]
    assert {s.function for s in readers} == {"RuleMembershipFunction", "StreamDispatcherFunction"}
    # Lambda's default quota: five filters per event source mapping
    assert all(len(s.filters) <= 5 for s in readers)


def test_each_dispatched_concern_has_its_own_fifo_queue_and_dlq() -> None:
    resources = template()["Resources"]
    dispatcher = resources["StreamDispatcherFunction"]["Properties"]
    variables = dispatcher["Environment"]["Variables"]
    [statement] = dispatcher["Policies"][0]["Statement"]
    consumers = {s.queue: s.function for s in cfn.sqs_sources(template())}
    for variable, queue, function in (
        ("PUBLISHER_QUEUE_URL", "PublisherQueue", "PublisherFunction"),
        ("SIGNAL_FEED_QUEUE_URL", "SignalFeedQueue", "SignalFeedFunction"),
    ):
        assert variables[variable] == {"Ref": queue}
        assert {"Fn::GetAtt": [queue, "Arn"]} in statement["Resource"] and statement["Action"] == ["sqs:SendMessage"]
        assert consumers[queue] == function
        props = resources[queue]["Properties"]
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert props["FifoQueue"] is True and resources[dlq]["Properties"]["FifoQueue"] is True
        assert f"{dlq}Alarm" in resources
        assert props["VisibilityTimeout"] >= 6 * resources[function]["Properties"]["Timeout"]
    assert [r.concern for r in stream_dispatch.ROUTES] == ["publisher", "signal feed"]


def _dispatch(signals: Any, monkeypatch: pytest.MonkeyPatch, batch: list[dict[str, Any]]) -> dict[str, list[dict]]:
    """Run the dispatcher over a stream batch; what each concern's queue then holds (as Lambda's
    SQS event source would hand it over), in order."""
    from segments import aws

    urls = {"publisher": signals.bus.queues["PublisherQueue"], "signal feed": signals.bus.queues["SignalFeedQueue"]}
    monkeypatch.setenv("PUBLISHER_QUEUE_URL", urls["publisher"])
    monkeypatch.setenv("SIGNAL_FEED_QUEUE_URL", urls["signal feed"])
    aws.reset()
    assert failures(run("StreamDispatcherFunction", {"Records": batch})) == []
    sqs = boto3.client("sqs", region_name=REGION)
    held: dict[str, list[dict]] = {}
    for concern, url in urls.items():
        held[concern] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
            messages = got.get("Messages", [])
            if not messages:
                break
            for m in messages:
                held[concern].append(
                    {
                        "messageId": m["MessageId"],
                        "body": m["Body"],
                        "attributes": m["Attributes"],
                        "eventSource": "aws:sqs",
                    }
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return held


def test_through_the_queues_each_concern_does_what_it_did_from_the_stream(
    signals: Any, api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = create_segment(api, org.key, "Watched")
    other = create_segment(api, org.key, "Other")
    add(api, org.key, sid, PID)
    assert failures(ingest(person_event("death", PID))) == []
    add(api, org.key, other, PID, "p-late01")
    remove(api, org.key, sid, PID)
    batch = signals.stream_batch()
    held = _dispatch(signals, monkeypatch, batch)

    wanted = {c: [r for r in batch if c in stream_dispatch.concerns_of(StreamChange(r))] for c in held}
    assert wanted["publisher"] and wanted["signal feed"]
    for concern, messages in held.items():
        # the same stream records, each once; each segment's in stream order (one message group each)
        got = [json.loads(m["body"]) for m in messages]
        assert sorted(got, key=lambda r: r["eventID"]) == sorted(wanted[concern], key=lambda r: r["eventID"])
        for group in {m["attributes"]["MessageGroupId"] for m in messages}:
            order = [r["eventID"] for r in got if keys.stream_group(*StreamChange(r).keys) == group]
            assert order == [r["eventID"] for r in wanted[concern] if keys.stream_group(*StreamChange(r).keys) == group]
        for m in messages:
            change = StreamChange(json.loads(m["body"]))
            assert m["attributes"]["MessageGroupId"] == keys.stream_group(*change.keys)
            assert m["attributes"]["MessageDeduplicationId"] == change.change_id
    assert {m["attributes"]["MessageGroupId"] for m in held["publisher"]} >= {f"SEG#{sid}", f"SEG#{other}"}

    # events out through the publisher's queue: the events the stream batch itself gives
    assert failures(run("PublisherFunction", {"Records": held["publisher"]})) == []
    through_queue = signals.bus.published()
    assert failures(run("PublisherFunction", {"Records": wanted["publisher"]})) == []
    direct = signals.bus.published()
    assert sorted(e["detail"]["event_id"] for e in through_queue) == sorted(e["detail"]["event_id"] for e in direct)
    assert {e["detail-type"] for e in direct} == {"Segment Membership Changed", "Segment Signal Detected"}
    # the signal feed through its queue: the late joiner of `other` gets the death
    assert failures(run("SignalFeedFunction", {"Records": held["signal feed"]})) == []
    assert api.get("/v2/segments/signals/deaths", key=org.key, query={"segment_id": other}).json["results"]


def _queued(*records: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": json.dumps(r), "eventSource": "aws:sqs"} for i, r in enumerate(records)
        ]
    }


def _ledger(n: int) -> dict[str, Any]:
    return {
        "eventID": f"e{n}",
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"pk": {"S": "SEG#s1"}, "sk": {"S": f"LOG#2024-01-01T00:00:0{n}.000000Z#req#0000"}},
            "NewImage": {"n": {"N": str(n)}},
            "SequenceNumber": str(100 + n),
        },
    }


def test_a_queue_batch_gives_the_same_changes_and_reports_from_the_first_failure() -> None:
    seen: list[int] = []

    def apply(change: StreamChange) -> None:
        if change.new["n"] == 1:
            raise RuntimeError("poison")
        seen.append(int(change.new["n"]))

    result = dynamodb_stream.in_order(_queued(_ledger(0), _ledger(1), _ledger(2)), apply, what="test")
    # FIFO: the failed message and every later one go back; nothing after the failure is applied
    assert seen == [0] and failures(result) == ["m1", "m2"]

    def apply_batch(changes: Any) -> int | None:
        assert [c.change_id for c in changes] == ["e0", "e1", "e2"]
        return 2

    assert failures(dynamodb_stream.as_batch(_queued(_ledger(0), _ledger(1), _ledger(2)), apply_batch, what="t")) == [
        "m2"
    ]
    not_a_record = {"Records": [{"messageId": "m0", "body": "[]", "eventSource": "aws:sqs"}]}
    assert failures(dynamodb_stream.in_order(not_a_record, apply, what="test")) == ["m0"]


def _in(segment: str, n: int) -> dict[str, Any]:
    record = _ledger(n)
    return {**record, "dynamodb": {**record["dynamodb"], "Keys": {"pk": {"S": segment}, "sk": {"S": f"LOG#{n}"}}}}


def test_the_dispatcher_packs_calls_without_reordering_a_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setenv("PUBLISHER_QUEUE_URL", "https://sqs/publisher.fifo")
    monkeypatch.setenv("SIGNAL_FEED_QUEUE_URL", "https://sqs/feed.fifo")
    from segments import aws

    aws.reset()

    def send_batch(url: str, bodies: Any, fifo: Any = None) -> queues.Sent:
        assert len({fifo[i][0] for i, _ in bodies}) == len(bodies)  # one message per segment a call
        calls.append((url.rsplit("/", 1)[-1], [i for i, _ in bodies]))
        failed = [i for i, _ in bodies if url.endswith("feed.fifo") and i in refused]
        return queues.Sent(sent=len(bodies) - len(failed), failed=failed)

    refused: set[str] = set()
    monkeypatch.setattr(queues, "send_batch", send_batch)
    # a segment's later change goes in a later call; another segment's fills an earlier one
    packed = [StreamChange(_in(seg, n)) for n, seg in enumerate(["SEG#s1", "SEG#s1", "SEG#s2", "SEG#s2", "SEG#s3"])]
    assert stream_dispatch.forward(packed) is None
    assert [ids for queue, ids in calls if queue == "publisher.fifo"] == [["0", "2", "4"], ["1", "3"]]
    calls.clear()
    refused.add("3")
    # the signal feed's queue refuses change 3: its call is the last one made for that queue, and
    # the batch resumes from 3 (the publisher's queue got everything; it drops what it holds)
    changes = [StreamChange(_in(seg, n)) for n, seg in enumerate(["SEG#s1", "SEG#s2", "SEG#s1", "SEG#s1", "SEG#s1"])]
    assert stream_dispatch.forward(changes) == 3
    assert [ids for queue, ids in calls if queue == "publisher.fifo"] == [["0", "1"], ["2"], ["3"], ["4"]]
    assert [ids for queue, ids in calls if queue == "feed.fifo"] == [["0", "1"], ["2"], ["3"]]
