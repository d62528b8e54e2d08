"""PATCH and DELETE /v2/segments/{segment_id}"""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_segments import manage_routes

app = surface.resolver(minerva.SURFACE, manage_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
