"""REQUEST authorizers: x-api-key (Minerva surface) and Authorization: Bearer (SheepCRM surface)."""

from typing import Any

from segments import auth
from segments.observability import observed


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


@observed
def api_key_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    principal = auth.authenticate(_header(event, "x-api-key"))
    if principal is None:
        raise Exception("Unauthorized")  # API Gateway turns exactly this into its 401 response
    return auth.minerva_policy(principal, event["methodArn"])


@observed
def bearer_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    principal = auth.authenticate(auth.bearer_token(_header(event, "authorization")))
    if principal is None:
        raise Exception("Unauthorized")  # API Gateway turns exactly this into its 401 response
    return auth.sheep_policy(principal, event["methodArn"])
