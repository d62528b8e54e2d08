"""SheepCRM-style segment endpoints under /segments/v2/{bucket}."""

from typing import Any

from segments.observability import observed
from segments.surfaces import http, sheep

app = sheep.resolver()
app.include_router(sheep.create_router)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
