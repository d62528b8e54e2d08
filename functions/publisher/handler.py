"""Events out (docs/api.md#segment-events): the table's stream (feed-entry and ledger INSERTs) onto the event bus."""

from typing import Any

from segments.adapters import dynamodb_stream
from segments.events import publish
from segments.observability import observed


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dynamodb_stream.as_batch(event, publish.publish, what="publishing")
