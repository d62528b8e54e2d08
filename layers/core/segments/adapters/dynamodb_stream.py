"""The table's DynamoDB stream, as Lambda delivers it, turned into typed changes: the one place that
reads Lambda's stream batch (`{"Records": [...]}`) and writes its partial-batch response.

A stream function's handler passes the event and its use case to `in_order` (one change at a
time: rule membership, the signal feed) or `as_batch` (the whole batch at once: the publisher's
PutEvents). The adapter:
  - parses each record into a `StreamChange` (event name, keys, old and new image as plain
    Python values, sequence number), the images deserialized on first use;
  - orders the batch by sequence number (Lambda delivers one shard's records in that order; a
    batch whose numbers are not all decimal keeps its delivery order);
  - stops at the first change that fails and reports that record's sequence number as the one
    `batchItemFailures` entry (ReportBatchItemFailures): the changes before it are done, Lambda
    resumes from it, so no change is applied before one that precedes it;
  - returns `{"batchItemFailures": []}` when every change is done (an empty batch included).

A record that cannot be parsed (an image that is not DynamoDB JSON) fails as its use case would:
it is reported and the batch resumes from it. A record without a sequence number is reported
with an empty identifier, which Lambda takes as the whole batch failed.

The same two entry points take an SQS batch of a concern's FIFO queue, whose messages carry the
stream records StreamDispatcherFunction forwarded (`adapters/stream_queue.py`): the same
`StreamChange`s, in the queue's order (one segment's changes in order: one message group), and
SQS's partial-batch response (the failed message and every later one, by message id).

Use cases receive `StreamChange`s and never see the batch format; this module imports nothing
above the store (its type is all the use cases take from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

from segments.adapters import stream_queue
from segments.observability import logger
from segments.store.dynamo import from_item

INSERT, MODIFY, REMOVE = "INSERT", "MODIFY", "REMOVE"


class StreamChange:
    """One stream record: what changed in which item (keys, old, new), and where it sits in the stream."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        if not isinstance(record, Mapping):
            raise TypeError(f"a stream record is an object, not {type(record).__name__}")
        images = record.get("dynamodb") or {}
        self.event_name: str = str(record.get("eventName") or "")
        self.sequence_number: str = str(images.get("SequenceNumber", ""))
        self.event_id: str = str(record.get("eventID") or "")
        raw = images.get("Keys") or {}
        pk, sk = (raw.get("pk") or {}).get("S"), (raw.get("sk") or {}).get("S")
        # (pk, sk) of the item; None for an item of another key shape (nothing here reads those)
        self.keys: tuple[str, str] | None = (str(pk), str(sk)) if pk is not None and sk is not None else None
        self.record = record  # as Lambda delivered it (the dispatcher forwards it as it is)
        self._images = images

    @property
    def change_id(self) -> str:
        """An id of this change that a stream retry repeats (the record's eventID, else its sequence number)."""
        return self.event_id or self.sequence_number

    @property
    def inserted(self) -> bool:
        return self.event_name == INSERT

    @property
    def has_old(self) -> bool:
        """Did the record carry an old image (MODIFY, REMOVE; never an INSERT)?"""
        return bool(self._images.get("OldImage"))

    @cached_property
    def old(self) -> dict[str, Any]:
        """The item before the change ({} when there was none)."""
        return from_item(self._images.get("OldImage") or {})

    @cached_property
    def new(self) -> dict[str, Any]:
        """The item after the change ({} for a REMOVE)."""
        return from_item(self._images.get("NewImage") or {})

    def __repr__(self) -> str:
        return f"StreamChange({self.event_name} {self.keys} #{self.sequence_number})"


def _sequence_number(record: Any) -> str:
    if not isinstance(record, Mapping):
        return ""
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def ordered(records: Sequence[Any]) -> list[Any]:
    """The records by sequence number (their delivery order when a number is not decimal)."""
    numbers = [_sequence_number(r) for r in records]
    if not all(n.isdecimal() for n in numbers):
        return list(records)
    return [r for _, _, r in sorted(zip((int(n) for n in numbers), range(len(records)), records, strict=True))]


class _Batch:
    """A batch of stream records (ordered by sequence number) or of queue messages (in queue order)."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        records = list(event.get("Records") or [])
        self.queued = stream_queue.is_queue_batch(records)
        self.records = records if self.queued else ordered(records)

    def change(self, position: int) -> StreamChange:
        record = self.records[position]
        return StreamChange(stream_queue.stream_record(record) if self.queued else record)

    def failures_from(self, position: int) -> dict[str, Any]:
        """The partial-batch response resuming at `position`."""
        if self.queued:
            return stream_queue.failures_from(self.records, position)
        return {"batchItemFailures": [{"itemIdentifier": _sequence_number(self.records[position])}]}

    def identifier(self, position: int) -> dict[str, str]:
        record = self.records[position]
        if self.queued:
            return {"message_id": stream_queue.message_id(record)}
        return {"sequence_number": _sequence_number(record)}


def _failed(batch: _Batch, position: int, what: str) -> dict[str, Any]:
    logger.exception(f"{what} failed; it will be retried", extra=batch.identifier(position))
    return batch.failures_from(position)


def in_order(event: Mapping[str, Any], apply: Callable[[StreamChange], object], *, what: str) -> dict[str, Any]:
    """Apply each change of the batch in order; the partial-batch response (the first failure reported,
    nothing after it applied). `what` names the consumer in the failure's log line."""
    batch = _Batch(event)
    for position in range(len(batch.records)):
        try:
            apply(batch.change(position))
        except Exception:  # noqa: BLE001 - any failure is this record's: report it, Lambda resumes from it
            return _failed(batch, position, what)
    return {"batchItemFailures": []}


def as_batch(
    event: Mapping[str, Any], apply: Callable[[Sequence[StreamChange]], int | None], *, what: str
) -> dict[str, Any]:
    """Hand the whole batch, in order, to `apply`, which returns the position of the first change it
    could not complete (None when all are done); the partial-batch response. A record that cannot be
    parsed ends the batch before it: the changes before it are handed over, it is reported. An
    exception out of `apply` fails the whole invocation (nothing is known done)."""
    batch = _Batch(event)
    changes: list[StreamChange] = []
    unparsed: list[dict[str, Any]] = []  # the response naming a record not parsed
    for position in range(len(batch.records)):
        try:
            changes.append(batch.change(position))
        except Exception:  # noqa: BLE001 - not a stream record: reported like a failure
            unparsed.append(_failed(batch, position, what))
            break
    first = apply(changes)
    if first is not None:
        logger.warning(f"{what} incomplete; it will be retried", extra=batch.identifier(first))
        return batch.failures_from(first)
    if unparsed:
        return unparsed[0]
    return {"batchItemFailures": []}
