"""SheepCRM exports and fieldsets under /segments/v2/{bucket}: /all/excel, /all/xlsx, /all/pdf, the
journal of an export, /fieldset."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, sheep
from segments.surfaces.sheep_exports import sheep_export_routes

app = surface.resolver(sheep.SURFACE, sheep_export_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
