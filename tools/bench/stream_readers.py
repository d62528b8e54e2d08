"""`stream_readers`: what the stream dispatcher adds (docs/performance.md, "Stream readers").

The table's stream has two readers: RuleMembershipFunction, and StreamDispatcherFunction, which
forwards feed, ledger and restore changes to the FIFO queues of PublisherFunction and
SignalFeedFunction. Before, those two read the stream themselves (three readers). On the same
stream batch (real records of moto's stream: members added to segments, deaths of some of them),
in-process moto, fresh tables per run:

- direct: PublisherFunction and SignalFeedFunction each invoked on the stream batch (as before);
- dispatched: StreamDispatcherFunction on the stream batch, then each queue drained as Lambda's SQS
  event source does (ReceiveMessage up to 10, the consumer invoked, DeleteMessageBatch).

It reports the AWS calls of each path by operation and the time from the batch to the last
consumer's answer, as a ratio (medians of `--runs`). Two shapes: changes spread over many segments
(the dispatcher sends up to 10 messages a call), and every change in one segment (one message a
call: a call never holds two changes of one segment, so a partial failure cannot reorder them).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from tools import cfn
from tools.bench import core
from tools.bench.calls import ServiceCalls
from tools.bench.harness import (
    REGION,
    TEMPLATE,
    Options,
    add_members,
    benchmark,
    function_env,
    invoke,
    load_handler,
    new_segment,
    person_event,
    quiet,
    say,
)
from tools.bench.moto import moto_in_process

CONSUMERS = {"PublisherQueue": "PublisherFunction", "SignalFeedQueue": "SignalFeedFunction"}


def _stream_records() -> list[dict[str, Any]]:
    """Every record of the table's stream so far, shaped as Lambda delivers them."""
    import boto3

    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="SegmentsTable")["Table"][
        "LatestStreamArn"
    ]
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    out: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        cursor = iterator["ShardIterator"]
        while True:
            page = streams.get_records(ShardIterator=cursor, Limit=1000)
            for record in page["Records"]:
                record = json.loads(json.dumps(record, default=str))
                record["eventSourceARN"] = arn
                record["dynamodb"]["ApproximateCreationDateTime"] = 1705314645
                out.append(record)
            if not page["Records"]:
                return out
            cursor = page["NextShardIterator"]
    return out


def _scenario(segments: int, changes: int) -> list[dict[str, Any]]:
    """`changes` dispatched changes (ledger INSERTs and the feed entries of deaths) over `segments`
    segments; the stream batch Lambda would deliver to the dispatcher (its filters applied)."""
    ids = [new_segment(f"readers {n}") for n in range(segments)]
    made, n = 0, 0
    while made < changes:  # each add writes a ledger entry; each death of a member, a feed entry
        for i, segment_id in enumerate(ids):
            pid = f"p-rd{n:04d}{i:04d}"
            add_members(segment_id, [pid])
            made += 1
            if n % 2:
                core.ingest_event(person_event("death", pid, f"evt-rd-{n}-{i}", "2024-01-15T10:30:45.123456Z"))
                made += 1
        n += 1
    batch = [r for r in _stream_records() if core.dispatched_concerns(r)]
    return batch[:changes]


def _drain(queue_url: str, function: str) -> int:
    """Lambda's SQS event source on one FIFO queue: receive up to 10, invoke, delete; batches run."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    handler, batches = load_handler(function), 0
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return batches
        records = [
            {"messageId": m["MessageId"], "body": m["Body"], "attributes": m["Attributes"], "eventSource": "aws:sqs"}
            for m in messages
        ]
        answer = invoke(handler, {"Records": records})
        assert not answer.get("batchItemFailures"), answer
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        batches += 1


def _run(mode: str, segments: int, changes: int) -> tuple[float, dict[str, int], int]:
    """One fresh run of a path: (seconds from the batch to the last answer, calls, stream records)."""
    import os

    import boto3

    template = cfn.load_template(TEMPLATE)
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"  # before moto's clients: its streams need it
    with moto_in_process():
        urls = cfn.create_queues(boto3.client("sqs", region_name=REGION), template)
        buses = cfn.create_buses(boto3.client("events", region_name=REGION), template, urls)
        env = {
            "EVENT_BUS_NAME": buses["SegmentsBus"],
            "PUBLISHER_QUEUE_URL": urls["PublisherQueue"],
            "SIGNAL_FEED_QUEUE_URL": urls["SignalFeedQueue"],
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto's streams need it
        }
        with function_env(env), quiet():
            core.reset_core()
            batch = _scenario(segments, changes)
            with ServiceCalls("dynamodb", "events", "sqs") as counted:
                core.reset_core()  # the core's clients are made again inside the block: counted
                started = time.perf_counter()
                if mode == "direct":
                    for function in CONSUMERS.values():
                        answer = invoke(load_handler(function), {"Records": batch})
                        assert not answer.get("batchItemFailures"), answer
                else:
                    answer = invoke(load_handler("StreamDispatcherFunction"), {"Records": batch})
                    assert not answer.get("batchItemFailures"), answer
                    for queue, function in CONSUMERS.items():
                        _drain(urls[queue], function)
                took = time.perf_counter() - started
                calls = counted.by_operation()
    return took, calls, len(batch)


def _calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in calls.items()) or "none"


@benchmark(
    "stream_readers",
    "two readers on the table's stream: the dispatcher's added calls and delay per stream batch (figures)",
)
def stream_readers(opts: Options) -> dict[str, str]:
    rows: dict[str, str] = {}
    for label, segments, changes in (("spread over 25 segments", 25, 100), ("all in one segment", 1, 100)):
        figures: dict[str, list[float]] = {"direct": [], "dispatched": []}
        calls: dict[str, dict[str, int]] = {}
        size = 0
        for _ in range(opts.runs):
            for mode in ("direct", "dispatched"):
                took, calls[mode], size = _run(mode, segments, changes)
                figures[mode].append(took)
        direct, dispatched = statistics.median(figures["direct"]), statistics.median(figures["dispatched"])
        sqs_calls = {op: n for op, n in calls["dispatched"].items() if op.startswith("sqs:")}
        say(f"({label}) a stream batch of {size} dispatched changes, medians of {opts.runs} runs, in-process moto")
        say(f"    direct (the consumers on the stream):  {direct * 1000:.0f} ms; {_calls_text(calls['direct'])}")
        say(
            f"    dispatched (dispatcher, FIFO queues):  {dispatched * 1000:.0f} ms; {_calls_text(calls['dispatched'])}"
        )
        say(f"    added: {dispatched / direct:.2f} x the time; SQS calls {_calls_text(sqs_calls)}")
        rows[f"stream readers, {label}: batch of {size}, time dispatched / direct"] = (
            f"{dispatched / direct:.2f} x ({dispatched * 1000:.0f} ms vs {direct * 1000:.0f} ms)"
        )
        rows[f"stream readers, {label}: SQS calls added"] = _calls_text(sqs_calls)
    return rows
