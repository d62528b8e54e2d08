"""The table's stream, dispatched: feed-entry, ledger and restore changes onto the FIFO queue of each
concern that reads them (PublisherFunction, SignalFeedFunction), so the stream keeps two readers."""

from typing import Any

from segments.adapters import dynamodb_stream, stream_dispatch
from segments.observability import observed


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dynamodb_stream.as_batch(event, stream_dispatch.forward, what="stream dispatch")
