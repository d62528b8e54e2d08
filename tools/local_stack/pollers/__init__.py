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

An SQS source with `ScalingConfig.MaximumConcurrency` gets that many pollers (at most
SQS_POLLERS_MAX here), so several of its batches are in flight at once, as Lambda scales its
pollers: one slow batch does not hold the queue.

EventBridge rules deliver to SQS queues inside moto (`tools/moto_events.py` fixes the envelope),
so bus -> rule -> queue -> function runs with no poller of its own.
"""

from __future__ import annotations

import threading
from typing import Any

from tools import cfn
from tools.local_stack.pollers.base import Poller, client, log
from tools.local_stack.pollers.sqs import SqsPoller
from tools.local_stack.pollers.streams import StreamPoller, stream_record
from tools.local_stack.runtime import Runtime

SQS_POLLERS_MAX = 8  # concurrent batches of one SQS source here (a shared 2-core machine)

__all__ = ["Poller", "SqsPoller", "StreamPoller", "start_pollers", "stream_record"]


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
            for n in range(min(SQS_POLLERS_MAX, source.maximum_concurrency or 1)):
                pollers.append(
                    SqsPoller(
                        runtime,
                        source,
                        resources[source.queue],
                        arn,
                        endpoint_url,
                        stopping,
                        retry_delay=sqs_retry_delay,
                        number=n,
                    )
                )
    dynamodb = client("dynamodb", endpoint_url) if cfn.stream_sources(template) else None
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
