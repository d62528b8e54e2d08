"""Publish a batch of stream changes, in order, and say which one the stream resumes from.

The publisher's handler hands the whole batch to `publish` through the stream adapter
(adapters/dynamodb_stream.py), which reports the change `publish` names (its sequence number) to
Lambda's DynamoDB stream source with ReportBatchItemFailures: changes before it are done, it and
everything after it come again. Events of later changes that did go out in the same PutEvents call
may thus be sent twice; their `event_id` is the same both times. A change whose events cannot be
built (an image that is not DynamoDB JSON) ends the batch there: the changes before it are put,
it is the one reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from segments.adapters.dynamodb_stream import StreamChange
from segments.events import bus, outbox
from segments.observability import MetricUnit, logger, metrics


def publish(changes: Sequence[StreamChange]) -> int | None:
    """Put the events of `changes`; the position of the first change not fully published (None: all were)."""
    entries: list[bus.Entry] = []
    owner: list[int] = []  # entry position -> change position
    unbuilt: int | None = None
    for position, change in enumerate(changes):
        try:
            built = outbox.entries_of(change)
        except Exception:  # noqa: BLE001 - a poison record: the ones before it still go out
            logger.exception("stream change not readable", extra={"sequence_number": change.sequence_number})
            unbuilt = position
            break
        entries.extend(built)
        owner.extend([position] * len(built))
    failed = bus.put(entries) if entries else []
    sent = len(entries) - len(failed)
    if sent:
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=sent)
    if failed:
        metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=len(failed))
        logger.warning("events not published", extra={"failed_entries": len(failed)})
        return owner[failed[0]]
    return unbuilt
