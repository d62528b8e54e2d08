"""SheepCRM-style segment changes under /segments/v2/{bucket}: create, update, delete, restore."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, sheep
from segments.surfaces.sheep_manage import manage_routes
from segments.surfaces.sheep_segments import create_routes

app = surface.resolver(sheep.SURFACE, create_routes, manage_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
