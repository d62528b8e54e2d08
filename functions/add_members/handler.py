"""POST /v2/segments/members/add"""

from typing import Any

from segments.observability import observed
from segments.surfaces import http, minerva
from segments.surfaces.minerva_members import add_router

app = minerva.resolver()
app.include_router(add_router)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
