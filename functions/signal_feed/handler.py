"""Late joiners and removals (docs/api.md#signals): the table's stream (ledger INSERTs) keeps signal feeds current."""

from typing import Any

from segments.observability import logger, metrics
from segments.usecases import signal_feed


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return signal_feed.reconcile_stream(event.get("Records") or [])
