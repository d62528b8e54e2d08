"""POST /v2/segments/members/add"""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_members import add_routes

app = surface.resolver(minerva.SURFACE, add_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
