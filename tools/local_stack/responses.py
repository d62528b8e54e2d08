"""API Gateway's own answers: the template's GatewayResponses, rendered from their VTL."""

from __future__ import annotations

import json
import re

from tools import cfn
from tools.local_stack.routing import Response

# Status, x-amzn-ErrorType and $context.error.message of API Gateway's built-in responses.
RESPONSE_DEFAULTS: dict[str, tuple[int, str, str | None]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    "RESOURCE_NOT_FOUND": (404, "ResourceNotFoundException", "Not Found"),
    "UNAUTHORIZED": (401, "UnauthorizedException", "Unauthorized"),
    "ACCESS_DENIED": (403, "AccessDeniedException", "User is not authorized to access this resource"),
    "AUTHORIZER_FAILURE": (500, "AuthorizerFailureException", None),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "AuthorizerConfigurationException", None),
    "REQUEST_TOO_LARGE": (413, "RequestTooLargeException", "Request Too Long"),
    "INVALID_API_KEY": (403, "ForbiddenException", "Forbidden"),
    "THROTTLED": (429, "TooManyRequestsException", "Too Many Requests"),
    "QUOTA_EXCEEDED": (429, "LimitExceededException", "Limit Exceeded"),
    "DEFAULT_4XX": (400, "BadRequestException", "Bad Request"),
    "DEFAULT_5XX": (502, "InternalServerErrorException", "Internal server error"),
}

_STEP = r"\.[A-Za-z_]\w*(?:\([^)]*\))?"
_VTL_REFERENCE = re.compile(rf"\$!?(?:\{{context((?:{_STEP})+)\}}|context((?:{_STEP})+))")
_STEP_PARTS = re.compile(r"\.([A-Za-z_]\w*)(\(([^)]*)\))?")
_STRING_ARG = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def render_vtl(text: str, variables: dict[str, str | None]) -> str:
    """Substitute `$context.<name>` (and `${context.<name>}`) references, with string methods
    `.replace(a, b)`, `.toLowerCase()`, `.toUpperCase()` and `.trim()` applied to them.
    Unknown references are left as they are, as Velocity does."""

    def substitute(match: re.Match[str]) -> str:
        steps = [
            (m.group(1), m.group(3) if m.group(2) else None)
            for m in _STEP_PARTS.finditer(match.group(1) or match.group(2))
        ]
        for n in range(len(steps), 0, -1):
            name = ".".join(step for step, _ in steps[:n])
            if name in variables and all(args is None for _, args in steps[:n]):
                value = variables[name] or ""
                break
        else:
            return match.group(0)
        for method, args in steps[n:]:
            arguments = [a or b for a, b in _STRING_ARG.findall(args or "")]
            if method == "replace" and len(arguments) == 2:
                value = value.replace(arguments[0], arguments[1])
            elif method in ("toLowerCase", "toUpperCase", "trim") and args is not None:
                value = {"toLowerCase": value.lower, "toUpperCase": value.upper, "trim": value.strip}[method]()
            else:
                return match.group(0)
        return value

    return _VTL_REFERENCE.sub(substitute, text)


def gateway_response(
    api: cfn.Api, api_id: str, response_type: str, request_id: str, message: str | None = None, path: str = "/"
) -> Response:
    """API Gateway's own answer: the API's GatewayResponses entry for the type, else its
    DEFAULT_4XX/5XX, else the built-in `{"message": ...}` body."""
    default_status, error_type, default_message = RESPONSE_DEFAULTS[response_type]
    message = message or default_message
    responses = api.gateway_responses
    family = responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
    chosen = responses.get(response_type) or family
    status = (chosen and chosen.status_code) or (family and family.status_code) or str(default_status)
    templates = chosen.templates if chosen else {}
    body_template = (
        templates.get("application/json")
        or next(iter(templates.values()), None)
        or '{"message":$context.error.messageString}'
    )
    variables = {
        "requestId": request_id,
        "extendedRequestId": request_id,
        "error.message": message,
        "error.messageString": json.dumps(message),
        "error.responseType": response_type,
        "apiId": api_id,
        "stage": api.stage_name,
        "path": f"/{api.stage_name}{path}",
        "accountId": cfn.ACCOUNT_ID,
    }
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error_type),
        ("x-api-request-id", "req_" + request_id.replace("-", "")),
        *((chosen.headers.items()) if chosen else ()),
    ]
    return Response(int(status), headers, render_vtl(body_template, variables).encode())
