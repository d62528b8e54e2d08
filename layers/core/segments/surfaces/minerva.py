"""The Minerva wire format: `{"error", "status_code", "api_request_id"}` errors, Z-suffixed times."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, Field

from segments import errors
from segments.observability import MetricUnit, logger, metrics
from segments.surfaces.http import JSON, dumps, rate_limited_response, request_id

STATUS = {
    "validation": 422,
    "not_found": 404,
    "conflict": 404,  # the seed answers a duplicate name with 404
    "too_large": 413,
    "forbidden": 403,
    "unauthorized": 401,
    "unavailable": 503,
    "too_many": 429,
}

SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}]
# The 404 of a route naming a segment (its OpenAPI text).
SEGMENT_NOT_FOUND = "Segment not found: unknown, deleted, or another organisation's"


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, safe to show")
    status_code: int
    api_request_id: str = Field(pattern=r"^req_[0-9a-f]{32}$")
    details: list[ErrorDetail] | None = None


def error_responses(*statuses: int, notes: dict[int, str] | None = None) -> dict[int, Any]:
    """OpenAPI `responses=` entries for the error statuses a route returns (`notes` overrides texts)."""
    text = {
        401: "Invalid or missing API key",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        409: "A request with this Idempotency-Key is still in progress",
        413: "Too many PIDs or body too large",
        422: "Validation error",
        429: "Too many exports running for this organisation; retry when one has finished",
        500: "Internal server error",
        503: "The store is busy; retry after Retry-After seconds",
    }
    text.update(notes or {})
    responses: dict[int, Any] = {
        s: {"description": text[s], "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for s in statuses
    }
    return {**responses, 429: rate_limited_response("ErrorBody")}


def error(
    status: int, message: str, *, details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"error": message, "status_code": status, "api_request_id": request_id()}
    if details:
        body["details"] = details
    metrics.add_metric(name=f"Errors{status}", unit=MetricUnit.Count, value=1)
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers or {})


def ok(body: dict[str, Any], status: int = 200) -> Response:
    return Response(status_code=status, content_type=JSON, body=dumps({"api_request_id": request_id(), **body}))


def _details(errs: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid value")),
            "type": str(e.get("type", "value_error")),
        }
        for e in errs
    ]


def validation_message(errs: list[Any]) -> str:
    """The contract's messages for the common cases, else one naming the first bad field."""
    for e in errs:
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid" or loc == ("body",) or e.get("type") == "unsupported_content_type":
            return "Request body must be a JSON object"
    first = errs[0] if errs else {}
    parts = [str(p) for p in first.get("loc", ())]
    field = ".".join(parts[1:]) if len(parts) > 1 else (parts[0] if parts else "request")
    if first.get("type") == "missing" and parts and parts[0] == "body":
        return f"Input data must contain a '{field}' field"
    if first.get("type") == "missing":
        return f"Missing required parameter '{field}'"
    msg = str(first.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"Invalid '{field}': {msg}"


class _Minerva:
    """Every failure in Minerva's body; a duplicate name is 404, as the seed answers it."""

    def invalid_request(self, errs: list[Any]) -> Response:
        return error(422, validation_message(errs), details=_details(errs))

    def unsupported_body(self) -> Response:
        return error(422, "Request body must be a JSON object")

    def busy(self, exc: errors.Retryable) -> Response:
        return error(503, exc.message, headers={"Retry-After": str(exc.retry_after)})

    def domain(self, exc: errors.DomainError) -> Response:
        if exc.kind not in STATUS:
            logger.error("unmapped domain error", extra={"kind": exc.kind})
            return error(500, "Internal server error")
        return error(STATUS[exc.kind], exc.message, details=exc.details)

    def no_route(self) -> Response:
        return error(404, "Not Found")

    def idempotency_key_reused(self) -> Response:
        return error(422, "Idempotency-Key was already used with a different request body")

    def idempotency_in_progress(self) -> Response:
        return error(409, "A request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"})

    def internal(self) -> Response:
        return error(500, "Internal server error")


SURFACE = _Minerva()
