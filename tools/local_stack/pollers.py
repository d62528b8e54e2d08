"""Event source mappings: pollers that feed functions, through the same runtime as the gateway.

A poller is a thread that repeats `poll()` until the stack stops; `start_pollers` makes one per
enabled event source of the template whose function and source exist:

- `SqsPoller` (`Type: SQS`), as Lambda's SQS event source mapping: gathers up to BatchSize
  messages or until MaximumBatchingWindowInSeconds closes, drops (deletes) messages that match
  no FilterCriteria pattern, invokes, and deletes what succeeded. With ReportBatchItemFailures
  only the reported messages stay; an exception or an invalid response keeps the whole batch.
  What stays comes back when the queue's VisibilityTimeout expires (`retry_delay` shortens that
  locally), and SQS itself (moto) moves a message to the dead-letter queue of the queue's
  RedrivePolicy once it has been received maxReceiveCount times.
- `StreamPoller` (`Type: DynamoDB`), as Lambda's DynamoDB Streams event source mapping: reads
  each shard of the table's stream in order from StartingPosition, keeps the records matching
  FilterCriteria, invokes with up to BatchSize records (after MaximumBatchingWindowInSeconds),
  and on failure retries: from the first reported SequenceNumber (ReportBatchItemFailures), in
  halves (BisectBatchOnFunctionError), until MaximumRetryAttempts, after which the batch is
  skipped - logged as an error and, when the template names an SQS on-failure destination, sent
  there as Lambda sends it (batch info, not the records). Records older than
  MaximumRecordAgeInSeconds are skipped the same way.

EventBridge rules deliver to SQS queues inside moto (`tools/moto_events.py` fixes the envelope),
so bus -> rule -> queue -> function runs with no poller of its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tools import cfn
from tools.local_stack import filters
from tools.local_stack.runtime import Runtime

log = logging.getLogger("local_stack")

# The system attributes Lambda passes in a record's `attributes` (when SQS has them).
LAMBDA_SQS_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
STREAM_IDLE_WAIT = 0.25  # Lambda polls a stream's shards about four times a second


def _client(service: str, endpoint_url: str) -> Any:
    # DynamoDB Streams calls 404 against moto with account-id endpoints (docs/decisions.md)
    config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard", "max_attempts": 3})
    return boto3.client(service, endpoint_url=endpoint_url, region_name=cfn.REGION, config=config)


class Poller(threading.Thread):
    """Calls `poll()` until `stopping` is set; an error is logged and retried a second later."""

    def __init__(self, name: str, runtime: Runtime, stopping: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.runtime = runtime
        self.stopping = stopping

    def poll(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception:
                if not self.stopping.is_set():
                    log.error("poller %s:\n%s", self.name, traceback.format_exc())
                    self.stopping.wait(1)


def _failed_identifiers(result: Any, valid: set[str]) -> set[str] | None:
    """The `batchItemFailures[].itemIdentifier` of a response; None when the response is invalid
    (Lambda then fails the whole batch). A missing or null list means no failures."""
    if not isinstance(result, dict):
        return set()
    items = result.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in valid:
            return None
        failed.add(identifier)
    return failed


# ---------------------------------------------------------------- SQS


class SqsPoller(Poller):
    """Lambda's SQS event source mapping: gather a batch, invoke, delete what succeeded."""

    def __init__(
        self,
        runtime: Runtime,
        source: cfn.SqsSource,
        queue_url: str,
        queue_arn: str,
        endpoint_url: str,
        stopping: threading.Event,
        *,
        retry_delay: int | None = None,
    ) -> None:
        super().__init__(f"sqs-{source.function}-{source.queue}", runtime, stopping)
        for pattern in source.filters:
            filters.validate(pattern)
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.retry_delay = retry_delay
        self.sqs = _client("sqs", endpoint_url)

    def poll(self) -> None:
        messages = self._receive()
        if messages:
            self._process(messages)

    def _receive(self) -> list[dict[str, Any]]:
        """Long-poll for a first message, then gather until BatchSize or the batching window closes."""
        batch: dict[str, dict[str, Any]] = {}  # by MessageId: a message seen again keeps its newest handle
        deadline: float | None = None
        while len(batch) < self.source.batch_size and not self.stopping.is_set():
            if deadline is None:
                wait = 1  # short enough to notice stop()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(20, int(remaining))
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(10, self.source.batch_size - len(batch))),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in messages:
                batch[message["MessageId"]] = message
            if deadline is None:
                if not messages:
                    return []
                deadline = time.monotonic() + self.source.batching_window
            elif not messages and wait == 0:
                self.stopping.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return list(batch.values())

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
            if "StringValue" in value:
                attribute["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
            attributes[name] = attribute
        system = message.get("Attributes") or {}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {name: system[name] for name in LAMBDA_SQS_ATTRIBUTES if name in system},
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": cfn.REGION,
        }

    def _delete_messages(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def _release_messages(self, messages: list[dict[str, Any]]) -> None:
        """With a local retry delay, failed messages come back after it instead of the queue's timeout."""
        if self.retry_delay is None:
            return
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay}
                    for i, m in enumerate(chunk)
                ],
            )

    def _process(self, messages: list[dict[str, Any]]) -> None:
        name, queue = self.source.function, self.source.queue
        records = [self._record(m) for m in messages]
        wanted = [
            (m, r)
            for m, r in zip(messages, records, strict=True)
            if filters.matches_any(self.source.filters, filters.sqs_view(r))
        ]
        if len(wanted) < len(messages):
            dropped = [m for m in messages if all(m is not w for w, _ in wanted)]
            self._delete_messages(dropped)
            log.info("%s: %d message(s) from %s matched no filter, deleted", name, len(dropped), queue)
        if not wanted:
            return
        messages = [m for m, _ in wanted]
        try:
            result = self.runtime.invoke(name, {"Records": [r for _, r in wanted]})
        except Exception:
            log.error(
                "%s: batch of %d from %s failed, all will be retried:\n%s",
                name,
                len(messages),
                queue,
                traceback.format_exc(),
            )
            self._release_messages(messages)
            return
        failed = (
            _failed_identifiers(result, {m["MessageId"] for m in messages})
            if self.source.report_batch_item_failures
            else set()
        )
        if failed is None:
            log.error(
                "%s: invalid batchItemFailures %r; the batch of %d from %s will be retried",
                name,
                (result or {}).get("batchItemFailures"),
                len(messages),
                queue,
            )
            self._release_messages(messages)
            return
        self._delete_messages([m for m in messages if m["MessageId"] not in failed])
        self._release_messages([m for m in messages if m["MessageId"] in failed])
        receives = [int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) for m in messages]
        log.info(
            "%s: batch of %d from %s, %d failed (max receive count so far %d)",
            name,
            len(messages),
            queue,
            len(failed),
            max(receives),
        )


# ---------------------------------------------------------------- DynamoDB streams


def _attribute(value: Any) -> Any:
    """An AttributeValue as Lambda's JSON has it (binary as base64)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode() if isinstance(inner, bytes | bytearray) else inner}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() if isinstance(b, bytes | bytearray) else b for b in inner]}
    if kind == "M":
        return {"M": {k: _attribute(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_attribute(v) for v in inner]}
    return value


def stream_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda delivers it."""
    source = raw.get("dynamodb") or {}
    dynamodb: dict[str, Any] = {}
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        created = int(created.timestamp())
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = created
    for image in ("Keys", "NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = {name: _attribute(value) for name, value in source[image].items()}
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in source:
            dynamodb[key] = source[key]
    record = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or cfn.REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = raw["userIdentity"]
    return record


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    last_sequence: str | None = None  # of the last record read from the shard
    buffer: list[dict[str, Any]] = field(default_factory=list)  # matching records not yet done
    first_buffered_at: float | None = None  # the batching window starts with the first record
    splits: list[int] = field(default_factory=list)  # sizes of the next batches after a bisection
    attempts: int = 0  # failed invocations of the current batch (its retries so far)
    ended: bool = False  # the shard is closed and read to its end


class StreamPoller(Poller):
    """Lambda's DynamoDB Streams event source mapping for one function event."""

    def __init__(
        self,
        runtime: Runtime,
        source: cfn.StreamSource,
        stream_arn: str,
        endpoint_url: str,
        stopping: threading.Event,
        *,
        on_failure_url: str | None = None,
    ) -> None:
        super().__init__(f"stream-{source.function}-{source.table}", runtime, stopping)
        for pattern in source.filters:
            filters.validate(pattern)
        self.source = source
        self.stream_arn = stream_arn
        self.on_failure_url = on_failure_url
        self.streams = _client("dynamodbstreams", endpoint_url)
        self.sqs = _client("sqs", endpoint_url) if on_failure_url else None
        self.shards: dict[str, _Shard] = {}
        self.done_shards: set[str] = set()
        self._known_at_start: set[str] | None = None
        self.discover()  # StartingPosition (LATEST especially) is taken when the mapping starts

    # ------------------------------------------------ shards
    def discover(self) -> None:
        """Track the stream's open shards; a child shard waits until its parent is read to the end."""
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", [])
        ids = {shard["ShardId"] for shard in shards}
        if self._known_at_start is None:
            self._known_at_start = set(ids)
        for shard in shards:
            shard_id, parent = shard["ShardId"], shard.get("ParentShardId")
            if shard_id in self.shards or shard_id in self.done_shards:
                continue
            if parent and parent in ids and parent not in self.done_shards:
                continue
            state = _Shard(shard_id)
            position = self.source.starting_position if shard_id in self._known_at_start else "TRIM_HORIZON"
            state.iterator = self._iterator(shard_id, position)
            self.shards[shard_id] = state

    def _iterator(self, shard_id: str, position: str, sequence: str | None = None) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": position}
        if sequence is not None:
            kwargs["SequenceNumber"] = sequence
        return self.streams.get_shard_iterator(**kwargs).get("ShardIterator")

    def _renew(self, shard: _Shard, why: str) -> None:
        log.warning("%s: shard iterator of %s renewed (%s)", self.source.function, shard.shard_id, why)
        if shard.last_sequence is None:
            shard.iterator = self._iterator(shard.shard_id, "TRIM_HORIZON")
        else:
            shard.iterator = self._iterator(shard.shard_id, "AFTER_SEQUENCE_NUMBER", shard.last_sequence)

    def _read(self, shard: _Shard) -> None:
        if shard.ended or shard.iterator is None:
            return
        try:
            page = self.streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "TrimmedDataAccessException":
                shard.last_sequence = None
            self._renew(shard, code or str(error))
            return
        records = page.get("Records") or []
        next_iterator = page.get("NextShardIterator")
        if next_iterator is None:
            shard.ended = True
        elif records:  # an empty page keeps its iterator (moto keeps every iterator it hands out)
            shard.iterator = next_iterator
        for raw in records:
            record = stream_record(raw, self.stream_arn)
            shard.last_sequence = record["dynamodb"].get("SequenceNumber")
            if filters.matches_any(self.source.filters, record):
                shard.buffer.append(record)
        if shard.buffer and shard.first_buffered_at is None:
            shard.first_buffered_at = time.monotonic()

    # ------------------------------------------------ polling
    def poll(self) -> None:
        if not self.shards or any(shard.ended and not shard.buffer for shard in self.shards.values()):
            for shard_id in [s for s, shard in self.shards.items() if shard.ended and not shard.buffer]:
                del self.shards[shard_id]
                self.done_shards.add(shard_id)
            self.discover()
        busy = False
        for shard in list(self.shards.values()):
            if self.stopping.is_set():
                return
            busy = self._step(shard) or busy
        if not busy:
            self.stopping.wait(STREAM_IDLE_WAIT)

    def _step(self, shard: _Shard) -> bool:
        """Read, then invoke once if a batch is ready; True when something was invoked."""
        if len(shard.buffer) < self.source.batch_size:
            self._read(shard)
        if not shard.buffer:
            shard.first_buffered_at = None
            return False
        full = len(shard.buffer) >= self.source.batch_size or shard.ended or bool(shard.splits or shard.attempts)
        waited = time.monotonic() - (shard.first_buffered_at or 0.0)
        if not full and waited < self.source.batching_window:
            return False
        self._expire(shard)
        if shard.buffer:
            self._invoke(shard, shard.buffer[: shard.splits[0] if shard.splits else self.source.batch_size])
        if not shard.buffer:
            shard.first_buffered_at = None
        return True

    def _expire(self, shard: _Shard) -> None:
        """Skip the records older than MaximumRecordAgeInSeconds (the oldest are first)."""
        if self.source.max_record_age < 0:
            return
        limit = time.time() - self.source.max_record_age
        old = 0
        while old < len(shard.buffer) and shard.buffer[old]["dynamodb"].get("ApproximateCreationDateTime", 0) < limit:
            old += 1
        if old:
            self._give_up(shard, shard.buffer[:old], "RecordAgeExceeded")

    def _invoke(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        name = self.source.function
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        span = f"{sequences[0]}..{sequences[-1]}" if len(batch) > 1 else sequences[0]
        try:
            result = self.runtime.invoke(name, {"Records": batch})
        except Exception:
            log.error(
                "%s: batch of %d from %s stream (%s) failed (attempt %d):\n%s",
                name,
                len(batch),
                self.source.table,
                span,
                shard.attempts + 1,
                traceback.format_exc(),
            )
            self._failed(shard, batch)
            return
        failed = _failed_identifiers(result, set(sequences)) if self.source.report_batch_item_failures else set()
        if failed is None:
            log.error(
                "%s: invalid batchItemFailures %r for the batch %s; the batch fails",
                name,
                (result or {}).get("batchItemFailures"),
                span,
            )
            self._failed(shard, batch)
            return
        if not failed:
            log.info("%s: batch of %d from %s stream (%s), 0 failed", name, len(batch), self.source.table, span)
            self._done(shard, len(batch))
            if shard.splits:
                shard.splits.pop(0)
            return
        first = min(sequences.index(sequence) for sequence in failed)
        log.warning(
            "%s: batch of %d from %s stream (%s), %d failed; retrying from %s",
            name,
            len(batch),
            self.source.table,
            span,
            len(batch) - first,
            sequences[first],
        )
        self._done(shard, first)
        if shard.splits:
            shard.splits[0] -= first
        self._retry_or_give_up(shard, batch[first:], "RetryAttemptsExhausted")

    def _done(self, shard: _Shard, count: int) -> None:
        """The first `count` records are done: the checkpoint moves, a new batch (and retry count) begins."""
        if count:
            del shard.buffer[:count]
            shard.attempts = 0

    def _failed(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        if self.source.bisect_on_error and len(batch) > 1:
            half = math.ceil(len(batch) / 2)
            shard.splits[:1] = [half, len(batch) - half]
            log.warning("%s: batch of %d split into %d + %d", self.source.function, len(batch), half, len(batch) - half)
            return
        self._retry_or_give_up(shard, batch, "RetryAttemptsExhausted")

    def _retry_or_give_up(self, shard: _Shard, batch: list[dict[str, Any]], condition: str) -> None:
        shard.attempts += 1
        limit = self.source.max_retry_attempts
        if 0 <= limit < shard.attempts:
            self._give_up(shard, batch, condition)
            if shard.splits:
                shard.splits.pop(0)
            return
        self.stopping.wait(min(2.0, 0.1 * 2 ** (shard.attempts - 1)))  # Lambda backs off between retries

    def _give_up(self, shard: _Shard, batch: list[dict[str, Any]], condition: str) -> None:
        """Skip records as Lambda does: loudly, and to the on-failure destination when there is one."""
        first, last = batch[0]["dynamodb"]["SequenceNumber"], batch[-1]["dynamodb"]["SequenceNumber"]
        log.error(
            "%s: SKIPPED %d record(s) of %s stream, sequence numbers %s..%s (%s after %d attempt(s))%s",
            self.source.function,
            len(batch),
            self.source.table,
            first,
            last,
            condition,
            shard.attempts,
            f"; batch info sent to {self.source.on_failure}" if self.on_failure_url else "; no on-failure destination",
        )
        skipped = {id(record) for record in batch}
        shard.buffer[:] = [record for record in shard.buffer if id(record) not in skipped]
        if self.sqs and self.on_failure_url:
            self.sqs.send_message(
                QueueUrl=self.on_failure_url, MessageBody=json.dumps(self._failure_message(shard, batch, condition))
            )
        shard.attempts = 0

    def _failure_message(self, shard: _Shard, batch: list[dict[str, Any]], condition: str) -> dict[str, Any]:
        def arrival(record: dict[str, Any]) -> str:
            seconds = record["dynamodb"].get("ApproximateCreationDateTime") or 0
            return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT_ID}:function:{self.source.function}",
                "condition": condition,
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(batch[0]),
                "approximateArrivalOfLastRecord": arrival(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }


# ---------------------------------------------------------------- from the template


def start_pollers(
    template: dict[str, Any],
    resources: dict[str, str],
    runtime: Runtime,
    endpoint_url: str,
    stopping: threading.Event,
    *,
    sqs_retry_delay: int | None = None,
) -> list[Poller]:
    """One started poller per enabled event source of the template whose function and source exist."""
    functions = cfn.resources_of(template, cfn.SERVERLESS_FUNCTION)
    resolver = cfn.Resolver(template, resources)
    pollers: list[Poller] = []
    for source in cfn.sqs_sources(template):
        if not source.enabled:
            log.info("%s: SQS event %s is disabled in the template", source.function, source.event)
        elif source.function not in functions or source.queue not in resources:
            log.warning(
                "%s: SQS event %s has no queue %s here; not polled", source.function, source.event, source.queue
            )
        else:
            arn = resolver.get_att(source.queue, "Arn")
            pollers.append(
                SqsPoller(
                    runtime, source, resources[source.queue], arn, endpoint_url, stopping, retry_delay=sqs_retry_delay
                )
            )
    dynamodb = _client("dynamodb", endpoint_url) if cfn.stream_sources(template) else None
    for stream in cfn.stream_sources(template):
        if not stream.enabled:
            log.info("%s: DynamoDB event %s is disabled in the template", stream.function, stream.event)
            continue
        table = resources.get(stream.table)
        description = dynamodb.describe_table(TableName=table)["Table"] if dynamodb and table else {}
        stream_arn = description.get("LatestStreamArn")
        if stream.function not in functions or not stream_arn:
            log.warning(
                "%s: DynamoDB event %s has no stream on table %s here; not polled",
                stream.function,
                stream.event,
                stream.table,
            )
            continue
        on_failure_url = resources.get(stream.on_failure) if stream.on_failure else None
        if stream.on_failure and not str(on_failure_url or "").startswith("http"):
            log.warning(
                "%s: on-failure destination %s is not a local SQS queue; skipped batches are only logged",
                stream.function,
                stream.on_failure,
            )
            on_failure_url = None
        pollers.append(StreamPoller(runtime, stream, stream_arn, endpoint_url, stopping, on_failure_url=on_failure_url))
    for poller in pollers:
        poller.start()
    if pollers:
        log.info("event sources: %s", ", ".join(poller.name for poller in pollers))
    return pollers
