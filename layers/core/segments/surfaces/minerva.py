"""The Minerva wire format: `{"error", "status_code", "api_request_id"}` errors, Z-suffixed times."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel, Field

from segments import errors
from segments.observability import MetricUnit, logger, metrics
from segments.surfaces.http import JSON, dumps, request_id

STATUS = {
    "validation": 422,
    "not_found": 404,
    "conflict": 404,  # the seed answers a duplicate name with 404
    "too_large": 413,
    "forbidden": 403,
    "unauthorized": 401,
    "unavailable": 503,
}

SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}]


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
        500: "Internal server error",
        503: "The store is busy; retry after Retry-After seconds",
    }
    text.update(notes or {})
    return {
        s: {"description": text[s], "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for s in statuses
    }


def error(status: int, message: str, *, details: list[dict[str, Any]] | None = None,
          headers: dict[str, str] | None = None) -> Response:
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


def resolver() -> APIGatewayRestResolver:
    """A resolver with OpenAPI validation and every error in the Minerva body."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errs = list(exc.errors())
        return error(422, validation_message(errs), details=_details(errs))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return error(422, "Request body must be a JSON object")

    @app.exception_handler(errors.Retryable)
    def _busy(exc: errors.Retryable) -> Response:
        logger.warning("store busy", extra={"reason": exc.message})
        return error(503, exc.message, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        return error(STATUS.get(exc.kind, 500), exc.message if exc.kind in STATUS else "Internal server error",
                     details=exc.details)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        return error(404, "Not Found")

    _idempotency_handlers(app)

    @app.exception_handler(Exception)
    def _internal(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error(500, "Internal server error")

    return app


def _idempotency_handlers(app: APIGatewayRestResolver) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    @app.exception_handler(IdempotencyValidationError)
    def _reused(exc: Exception) -> Response:
        return error(422, "Idempotency-Key was already used with a different request body")

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(exc: Exception) -> Response:
        return error(409, "A request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"})
