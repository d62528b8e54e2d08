"""What both surfaces share: the caller from the authorizer, the request id, the entry wrapper."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Mapping
from typing import Any

from segments import errors
from segments.models import Actor
from segments.observability import append_request_keys, logger, set_correlation_id
from segments.timefmt import request_id_from

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_event: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("event")

JSON = "application/json"
IDEMPOTENCY_HEADER = "idempotency-key"


def request_id() -> str:
    return _request_id.get()


def actor() -> Actor:
    """The org and bucket the authorizer established for this request (never from the client),
    acting through the API."""
    authorizer = (_event.get().get("requestContext") or {}).get("authorizer") or {}
    org_id, bucket = authorizer.get("org_id"), authorizer.get("bucket")
    if not org_id or not bucket:
        raise errors.Unauthorized("Invalid or missing API key")
    return Actor(org_id=org_id, bucket=bucket, key_id=authorizer.get("key_id"), request_id=request_id(), reason="api")


def header(name: str) -> str | None:
    headers = _event.get().get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value)
    return None


def idempotency_key() -> str | None:
    """The Idempotency-Key header, validated (1-255 characters), or None."""
    key = header(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise errors.ValidationFailed("Idempotency-Key must be 1-255 characters")
    return key


def run_idempotent(operation: str, payload: Any, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a mutating use case once per Idempotency-Key (when the header is present)."""
    key = idempotency_key()
    if key is None:
        return fn()
    from segments import idempotency  # lazy: its import is paid only by requests that use it

    return idempotency.run_once(org_id=actor().org_id, operation=operation, key=key, payload=payload, fn=fn)


def _json_body_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Both APIs speak JSON only: a body sent without a JSON content type (curl -d) is read as JSON."""
    event = dict(event)
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["content-type"] = JSON
    event["headers"] = headers
    multi = event.get("multiValueHeaders")
    if multi:
        multi = {k: v for k, v in multi.items() if k.lower() != "content-type"}
        multi["content-type"] = [JSON]
        event["multiValueHeaders"] = multi
    return event


def handle(app: Any, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Resolve an API Gateway event with request id, correlation id and JSON-only bodies."""
    rid = request_id_from((event.get("requestContext") or {}).get("requestId"))
    tokens = (_request_id.set(rid), _event.set(event))
    set_correlation_id(rid)
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    append_request_keys(org_id=authorizer.get("org_id"), key_id=authorizer.get("key_id"))
    if context is not None:
        from segments import idempotency

        idempotency.register_lambda_context(context)
    try:
        result: dict[str, Any] = app.resolve(_json_body_event(event), context)
    finally:
        _request_id.reset(tokens[0])
        _event.reset(tokens[1])
    if result.get("multiValueHeaders") is not None:
        result["multiValueHeaders"]["x-api-request-id"] = [rid]
    else:
        result["headers"] = {**(result.get("headers") or {}), "x-api-request-id": rid}
    logger.info(
        "request handled",
        extra={"method": event.get("httpMethod"), "path": event.get("path"), "status": result.get("statusCode")},
    )
    return result


def dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
