"""The SQS event source mapping (see the package docstring)."""

from __future__ import annotations

import base64
import threading
import time
import traceback
from typing import Any

from tools import cfn
from tools.local_stack import filters
from tools.local_stack.pollers.base import Poller, client, failed_identifiers, log
from tools.local_stack.runtime import Runtime

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
        number: int = 0,
    ) -> None:
        suffix = f"-{number + 1}" if number else ""
        super().__init__(f"sqs-{source.function}-{source.queue}{suffix}", runtime, stopping)
        for pattern in source.filters:
            filters.validate(pattern)
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.retry_delay = retry_delay
        self.sqs = client("sqs", endpoint_url)

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
            failed_identifiers(result, {m["MessageId"] for m in messages})
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
