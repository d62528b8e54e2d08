"""Stream changes delivered through a FIFO queue: the SQS side of the table's stream.

StreamDispatcherFunction reads the stream and sends each change, as the stream record Lambda
delivered, to the FIFO queue of every concern that wants it (`adapters/stream_dispatch.py`),
grouped by segment. A concern's function then gets an SQS batch; this module turns its messages
back into the same `StreamChange`s the stream adapter makes, so the use cases cannot tell the
transports apart, and writes SQS's partial-batch response: on a FIFO queue, the message that failed
and every message after it (Lambda returns them to the queue, and no later change of a group is
applied before an earlier one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

SQS_SOURCE = "aws:sqs"


def is_queue_batch(records: Sequence[Any]) -> bool:
    """Is this a batch of SQS messages (rather than of stream records)?"""
    return bool(records) and isinstance(records[0], Mapping) and records[0].get("eventSource") == SQS_SOURCE


def stream_record(message: Any) -> Mapping[str, Any]:
    """The stream record a message carries (its body, as the dispatcher sent it)."""
    if not isinstance(message, Mapping):
        raise TypeError(f"an SQS message is an object, not {type(message).__name__}")
    record = json.loads(str(message.get("body") or ""))
    if not isinstance(record, Mapping):
        raise TypeError("the message body is not a stream record")
    return record


def message_id(message: Any) -> str:
    return str(message.get("messageId", "")) if isinstance(message, Mapping) else ""


def failures_from(messages: Sequence[Any], position: int) -> dict[str, Any]:
    """The partial-batch response: the message at `position` and every later one."""
    return {"batchItemFailures": [{"itemIdentifier": message_id(m)} for m in messages[position:]]}
