"""GET /v2/segments/signals/deaths, /job_changes and /relocations"""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_signals import signals_routes

app = surface.resolver(minerva.SURFACE, signals_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
