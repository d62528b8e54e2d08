"""Late joiners and removals (docs/api.md#signals): the table's stream (ledger INSERTs) keeps signal feeds current."""

from typing import Any

from segments.adapters import dynamodb_stream
from segments.observability import observed
from segments.usecases import signal_feed


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dynamodb_stream.in_order(event, signal_feed.apply, what="signal feed reconciliation")
