"""Event source mappings: pollers that feed functions, through the same runtime as the gateway.

A poller is a thread that repeats `poll()` until the stack stops; `start_pollers` makes one per
enabled event source of the template. SQS is the one kind today (EventBridge rules deliver to
SQS queues inside moto, so bus -> queue -> function works already); another kind is a subclass
and a line in `start_pollers`.
"""

from __future__ import annotations

import base64
import logging
import threading
import traceback
from typing import Any

import boto3

from tools import cfn
from tools.local_stack.runtime import Runtime

log = logging.getLogger("local_stack")


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


class SqsPoller(Poller):
    """Lambda's SQS event source mapping: receive a batch, invoke, delete what succeeded."""

    def __init__(
        self,
        runtime: Runtime,
        source: cfn.SqsSource,
        queue_url: str,
        queue_arn: str,
        endpoint_url: str,
        stopping: threading.Event,
    ) -> None:
        super().__init__(f"sqs-{source.function}-{source.queue}", runtime, stopping)
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=cfn.REGION)

    def poll(self) -> None:
        messages = self._receive()
        if messages:
            self._process(messages)

    def _receive(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.source.batch_size and not self.stopping.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(batch)),
                WaitTimeSeconds=0 if batch else 1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            batch.extend(messages)
        return batch

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
            if "StringValue" in value:
                attribute["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
            attributes[name] = attribute
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes") or {},
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": cfn.REGION,
        }

    def _process(self, messages: list[dict[str, Any]]) -> None:
        ids = {m["MessageId"] for m in messages}
        try:
            result = self.runtime.invoke(self.source.function, {"Records": [self._record(m) for m in messages]})
        except Exception:
            log.error("%s failed on a batch of %d:\n%s", self.source.function, len(messages), traceback.format_exc())
            return  # nothing deleted: the batch comes back after the visibility timeout
        failed: set[str] = set()
        if self.source.report_batch_item_failures and isinstance(result, dict):
            for item in result.get("batchItemFailures") or []:
                identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
                if not identifier or identifier not in ids:
                    log.error("%s: invalid batchItemFailures entry %r; whole batch retried", self.source.function, item)
                    return
                failed.add(identifier)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        log.info(
            "%s: batch of %d from %s, %d failed", self.source.function, len(messages), self.source.queue, len(failed)
        )


def start_pollers(
    template: dict[str, Any], resources: dict[str, str], runtime: Runtime, endpoint_url: str, stopping: threading.Event
) -> list[Poller]:
    """One started poller per enabled event source of the template."""
    pollers: list[Poller] = []
    for source in cfn.sqs_sources(template):
        if not source.enabled:
            continue
        arn = cfn.Resolver(template, resources).get_att(source.queue, "Arn")
        pollers.append(SqsPoller(runtime, source, resources[source.queue], arn, endpoint_url, stopping))
    for poller in pollers:
        poller.start()
    return pollers
