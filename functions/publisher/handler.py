"""Events out (docs/api.md#segment-events): the table's stream (feed-entry and ledger INSERTs) onto the event bus."""

from typing import Any

from segments.events import publish
from segments.observability import observed


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return publish.publish(event.get("Records") or [])
