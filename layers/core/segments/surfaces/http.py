"""What both surfaces share: the caller from the authorizer, the request id, the entry wrapper."""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from segments import errors
from segments.models import Actor
from segments.observability import append_request_keys, correlation_id, logger
from segments.timefmt import request_id_from

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_event: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("event")
_replayed: contextvars.ContextVar[bool] = contextvars.ContextVar("replayed", default=False)

JSON = "application/json"
IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"


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
    """Run a mutating use case once per Idempotency-Key (when the header is present).

    A replay answers the first response's body verbatim (a Minerva body's `api_request_id` names
    the request that did the work) under this request's own `x-api-request-id`, the id its log
    lines carry, with `Idempotent-Replayed: true` (docs/decisions.md: idempotent replays)."""
    key = idempotency_key()
    if key is None:
        return fn()
    from segments import idempotency  # lazy: its import is paid only by requests that use it

    ran = False

    def once() -> dict[str, Any]:
        nonlocal ran
        ran = True
        return fn()

    result = idempotency.run_once(org_id=actor().org_id, operation=operation, key=key, payload=payload, fn=once)
    if not ran:
        _replayed.set(True)
        logger.info(
            "idempotent replay",
            extra={"operation": operation, "first_api_request_id": result.get("api_request_id")},
        )
    return result


# ------------------------------------------------------------------ request bodies

MAX_JSON_DEPTH = 64  # lists and objects nested in a request body (DynamoDB stores at most 32)
NOT_UTF8 = "Request body must be JSON encoded in UTF-8"
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(text: str, what: str = "Request body") -> Any:
    """Decode untrusted JSON text safely, once; numbers with a fraction or exponent as Decimal, so
    the caller's digits are kept exactly (limits.storable decides whether DynamoDB can hold them).

    A syntax error stays json.JSONDecodeError (each surface renders it as "not a JSON object");
    everything else that would break later is ValidationFailed naming `what`: text that was not
    UTF-8 (see `_json_body_event`), an integer over Python's 4,300 digits, nesting deeper than
    MAX_JSON_DEPTH (checked without recursion; the C parser's RecursionError is caught too), and a
    lone surrogate escape ("\\ud800") in any string or key, which could be neither stored nor
    sent back."""
    if _SURROGATE.search(text):
        raise errors.ValidationFailed(NOT_UTF8 if what == "Request body" else f"{what} must be UTF-8 JSON")
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        raise
    except RecursionError as exc:
        raise errors.ValidationFailed(f"{what} nests lists or objects deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:  # int() over sys.get_int_max_str_digits()
        raise errors.ValidationFailed(f"{what} holds a number with too many digits") from exc
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise errors.ValidationFailed(f"{what} holds a lone surrogate (\\ud800-\\udfff) in a string")
        elif isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise errors.ValidationFailed(f"{what} nests lists or objects deeper than {MAX_JSON_DEPTH} levels")
            children = [*node, *node.values()] if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return value


def json_body(text: str) -> Any:
    """The resolver's body deserializer (Powertools calls it once, before validating the body)."""
    return parse_json(text)


def _decoded_body(event: dict[str, Any]) -> None:
    """API Gateway passes a body that is not UTF-8 base64-encoded (isBase64Encoded): decode it here,
    keeping undecodable bytes as lone surrogates, which parse_json refuses (instead of the
    UnicodeDecodeError Powertools would raise)."""
    body = event.get("body")
    if not event.get("isBase64Encoded") or not isinstance(body, str):
        return
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raw = b"\xff"
    event["body"] = raw.decode("utf-8", "surrogateescape")
    event["isBase64Encoded"] = False


def _json_body_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Both APIs speak JSON only: a body sent without a JSON content type (curl -d) is read as JSON,
    and a base64-encoded body is decoded (see `_decoded_body`)."""
    event = dict(event)
    _decoded_body(event)
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
    """Resolve an API Gateway event with request id and JSON-only bodies; the request id is the
    correlation id `observed` gave the invocation's log lines."""
    rid = correlation_id() or request_id_from((event.get("requestContext") or {}).get("requestId"))
    tokens = (_request_id.set(rid), _event.set(event), _replayed.set(False))
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    append_request_keys(org_id=authorizer.get("org_id"), key_id=authorizer.get("key_id"))
    if context is not None:
        from segments import idempotency

        idempotency.register_lambda_context(context)
    try:
        result: dict[str, Any] = app.resolve(_json_body_event(event), context)
        added = {"x-api-request-id": rid, **({REPLAYED_HEADER: "true"} if _replayed.get() else {})}
    finally:
        _request_id.reset(tokens[0])
        _event.reset(tokens[1])
        _replayed.reset(tokens[2])
    if result.get("multiValueHeaders") is not None:
        result["multiValueHeaders"].update({name: [value] for name, value in added.items()})
    else:
        result["headers"] = {**(result.get("headers") or {}), **added}
    logger.info(
        "request handled",
        extra={"method": event.get("httpMethod"), "path": event.get("path"), "status": result.get("statusCode")},
    )
    return result


def dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def ok_schema(model: Any, description: str = "OK", headers: dict[str, Any] | None = None) -> dict[int, Any]:
    """OpenAPI `responses=` entry of a 200 whose body is `model` (and, given, its response `headers`)."""
    entry: dict[str, Any] = {"description": description, "content": {JSON: {"model": model}}}
    if headers:
        entry["headers"] = headers
    return {200: entry}
