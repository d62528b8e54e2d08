"""SheepCRM-style reads of a segment's records under /segments/v2/{bucket}: config, lookup, signals,
and the progress of a bulk action (notification)."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, sheep
from segments.surfaces.sheep_records import records_routes

app = surface.resolver(sheep.SURFACE, records_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
