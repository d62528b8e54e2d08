"""SQS sending: the rebuild queue's next chunk, and person events sent by the admin CLI.

The client is created once per container and honours AWS_ENDPOINT_URL (the local stack, moto).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from segments import errors
from segments.config import get_settings

SEND_BATCH_MAX = 10  # SendMessageBatch entries per call
SEND_ROUNDS = 6  # rounds of retrying the entries a batch call reported failed

_lock = threading.Lock()


@lru_cache(maxsize=1)
def client() -> Any:
    with _lock:
        return boto3.client(
            "sqs",
            region_name=get_settings().region,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10),
        )


def reset() -> None:
    client.cache_clear()


def send(queue_url: str, body: Mapping[str, Any]) -> None:
    """Send one JSON message; a failure raises Retryable (the caller's message is retried)."""
    try:
        client().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, sort_keys=True, default=str))
    except ClientError as exc:
        raise errors.Retryable("The queue refused the message") from exc


@dataclass(frozen=True)
class Sent:
    sent: int
    failed: list[str]  # ids of entries that still failed after the retries


def send_batch(queue_url: str, bodies: Sequence[tuple[str, str]]) -> Sent:
    """Send (id, body) messages 10 a call (SendMessageBatch); entries reported failed by a call are
    sent again, up to SEND_ROUNDS rounds. Ids must be unique within `bodies` (1-80 of [A-Za-z0-9_-])."""
    failed: list[str] = []
    sent = 0
    for start in range(0, len(bodies), SEND_BATCH_MAX):
        pending = list(bodies[start : start + SEND_BATCH_MAX])
        for _ in range(SEND_ROUNDS):
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
