"""Reads: GET /v2/segments/members, /v2/segments, /v2/segments/{segment_id},
/v2/segments/memberships and /v2/segments/{segment_id}/history."""

from typing import Any

from segments.observability import observed
from segments.surfaces import http, minerva
from segments.surfaces.minerva_members import members_router
from segments.surfaces.minerva_segments import query_router

app = minerva.resolver()
app.include_router(members_router)
app.include_router(query_router)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
