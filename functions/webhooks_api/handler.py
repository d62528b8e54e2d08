"""/v2/webhooks: an org's webhook endpoints, secrets, pings, attempts, redelivery and replay (docs/api.md#webhooks)"""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, minerva
from segments.surfaces.minerva_webhooks import webhook_routes

app = surface.resolver(minerva.SURFACE, webhook_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
