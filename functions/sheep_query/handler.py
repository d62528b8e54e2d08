"""SheepCRM-style segment reads under /segments/v2/{bucket}: listings, find, trees, count, members."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, sheep
from segments.surfaces.sheep_reads import read_routes

app = surface.resolver(sheep.SURFACE, read_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
