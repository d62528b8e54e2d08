"""Late joiners and removals (docs/api.md#signals): the table's stream (ledger INSERTs) keeps signal feeds current."""

from typing import Any

from segments.observability import observed
from segments.usecases import signal_feed


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return signal_feed.reconcile_stream(event.get("Records") or [])
