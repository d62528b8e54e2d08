"""POST /v2/segments/create (405 for other methods, 404 for /v1)."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_segments import create_routes

app = surface.resolver(minerva.SURFACE, create_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
