"""Reads: GET /v2/segments/members, /v2/segments, /v2/segments/{segment_id},
/v2/segments/memberships and /v2/segments/{segment_id}/history."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_members import members_routes
from segments.surfaces.minerva_segments import query_routes

app = surface.resolver(minerva.SURFACE, members_routes, query_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
