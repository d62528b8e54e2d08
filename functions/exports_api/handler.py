"""Minerva exports under /v2/segments/exports: start a job, read one, list them."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_exports import export_routes

app = surface.resolver(minerva.SURFACE, export_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
