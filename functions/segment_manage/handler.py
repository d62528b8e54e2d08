"""PATCH and DELETE /v2/segments/{segment_id}"""

from typing import Any

from segments.observability import observed
from segments.surfaces import http, minerva
from segments.surfaces.minerva_segments import manage_router

app = minerva.resolver()
app.include_router(manage_router)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
