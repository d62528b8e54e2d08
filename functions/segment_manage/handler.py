"""PATCH and DELETE /v2/segments/{segment_id}"""

from typing import Any

from segments.observability import logger, metrics
from segments.surfaces import http, minerva
from segments.surfaces.minerva_segments import manage_router

app = minerva.resolver()
app.include_router(manage_router)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
