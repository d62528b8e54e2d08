"""SheepCRM-style bulk actions under /segments/v2/{bucket}/segment/{uid}/action: delete (queued),
replace (501); and .../all/sync_mailchimp (a full Mailchimp sync, queued)."""

from typing import Any

from segments.observability import observed
from segments.surfaces import app as surface
from segments.surfaces import http, sheep
from segments.surfaces.sheep_actions import action_routes
from segments.surfaces.sheep_mailchimp import mailchimp_routes

app = surface.resolver(sheep.SURFACE, action_routes, mailchimp_routes)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
