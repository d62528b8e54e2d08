"""Publish a batch of stream records, in order, and say where to resume.

Lambda's DynamoDB stream source with ReportBatchItemFailures resumes from the reported record:
the first record whose events could not all be put is reported (its SequenceNumber), records
before it are done, and it and everything after it come again. Events of later records that did
go out in the same PutEvents call may thus be sent twice; their `event_id` is the same both times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segments.events import bus, outbox
from segments.observability import MetricUnit, logger, metrics


def sequence_number(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def publish(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Put the events of `records`; the Lambda partial-batch response."""
    entries: list[bus.Entry] = []
    owner: list[int] = []  # entry position -> record position
    for position, record in enumerate(records):
        for entry in outbox.entries_of(record):
            entries.append(entry)
            owner.append(position)
    failed = bus.put(entries) if entries else []
    sent = len(entries) - len(failed)
    if sent:
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=sent)
    if not failed:
        return {"batchItemFailures": []}
    first = records[owner[failed[0]]]
    metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=len(failed))
    logger.warning(
        "events not published; the stream will retry",
        extra={"sequence_number": sequence_number(first), "failed_entries": len(failed)},
    )
    return {"batchItemFailures": [{"itemIdentifier": sequence_number(first)}]}
