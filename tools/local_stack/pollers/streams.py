"""The DynamoDB Streams event source mapping (see the package docstring)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tools import cfn
from tools.local_stack import filters
from tools.local_stack.pollers.base import Poller, client, failed_identifiers, log
from tools.local_stack.runtime import Runtime

STREAM_IDLE_WAIT = 0.25  # Lambda polls a stream's shards about four times a second
# An idle shard's iterator is taken afresh this often. moto's iterators hold the shard object they
# were taken from; were that object ever replaced (moto's own rollback of a cancelled transaction
# swaps in a copy of the table, shard included - tools/moto_atomic.py prevents it), an old
# iterator would read a shard nothing is written to any more, with no error to notice, forever.
ITERATOR_REFRESH = 2.0


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
    start: str = "TRIM_HORIZON"  # the iterator type the shard was first read from
    idle_since: float | None = None  # of the first empty page since records last came


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
        self.streams = client("dynamodbstreams", endpoint_url)
        self.sqs = client("sqs", endpoint_url) if on_failure_url else None
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
            position = self.source.starting_position if shard_id in self._known_at_start else "TRIM_HORIZON"
            state = _Shard(shard_id, start=position)
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

    def _refresh(self, shard: _Shard) -> None:
        """Take a new iterator at the same position (from the stream's current shard object)."""
        if shard.last_sequence is not None:
            shard.iterator = self._iterator(shard.shard_id, "AFTER_SEQUENCE_NUMBER", shard.last_sequence)
        elif shard.start == "TRIM_HORIZON":
            shard.iterator = self._iterator(shard.shard_id, "TRIM_HORIZON")
        # else LATEST and nothing read yet: its position is not known here; the iterator stays

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
            shard.idle_since = None
        elif shard.idle_since is None:
            shard.idle_since = time.monotonic()
        elif time.monotonic() - shard.idle_since >= ITERATOR_REFRESH:
            shard.idle_since = time.monotonic()
            self._refresh(shard)
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
        failed = failed_identifiers(result, set(sequences)) if self.source.report_batch_item_failures else set()
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
