"""SQS sending: the rebuild queue's next chunk, and person events sent by the admin CLI.

The client is segments.aws's (created once per container, honours AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from segments import aws, errors

SEND_BATCH_MAX = 10  # SendMessageBatch entries per call
SEND_ROUNDS = 6  # rounds of retrying the entries a batch call reported failed


def client() -> Any:
    """The SQS client (segments.aws: created once per container, honours AWS_ENDPOINT_URL)."""
    return aws.sqs()


def send(queue_url: str, body: Mapping[str, Any], *, delay_seconds: int = 0) -> None:
    """Send one JSON message (visible after `delay_seconds`, 0-900); a failure raises Retryable
    (the caller's message is retried)."""
    extra = {"DelaySeconds": delay_seconds} if delay_seconds else {}
    try:
        client().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, sort_keys=True, default=str), **extra)
    except ClientError as exc:
        raise errors.Retryable("The queue refused the message") from exc


@dataclass(frozen=True)
class Sent:
    sent: int
    failed: list[str]  # ids of entries that still failed after the retries


def send_batch(queue_url: str, bodies: Sequence[tuple[str, str]]) -> Sent:
    """Send (id, body) messages 10 a call (SendMessageBatch); entries reported failed by a call are
    sent again after a backoff, up to SEND_ROUNDS rounds. Ids must be unique within `bodies` (1-80 of [A-Za-z0-9_-])."""
    failed: list[str] = []
    sent = 0
    for start in range(0, len(bodies), SEND_BATCH_MAX):
        pending = list(bodies[start : start + SEND_BATCH_MAX])
        for round_ in range(SEND_ROUNDS):
            if round_:
                aws.backoff(round_)
            result = client().send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": i, "MessageBody": b} for i, b in pending]
            )
            sent += len(result.get("Successful") or [])
            again = {f["Id"] for f in result.get("Failed") or [] if not f.get("SenderFault")}
            failed += [f["Id"] for f in result.get("Failed") or [] if f.get("SenderFault")]
            pending = [(i, b) for i, b in pending if i in again]
            if not pending:
                break
        failed += [i for i, _ in pending]
    return Sent(sent=sent, failed=failed)
