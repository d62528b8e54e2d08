"""How each surface renders every kind of failure (surfaces/minerva.py, surfaces/sheep.py): the
Surface objects are called directly and their Powertools Responses read; no resolver, no request
(the request id is whatever the request context holds: nothing here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from segments import errors
from segments.observability import metrics
from segments.surfaces import minerva, sheep
from segments.surfaces.http import request_id

# The contract's status for each kind of domain error, per surface (docs/api.md#errors).
MINERVA = {
    "validation": 422,
    "not_found": 404,
    "conflict": 404,
    "too_large": 413,
    "forbidden": 403,
    "unauthorized": 401,
    "unavailable": 503,
    "too_many": 429,
}
SHEEP = {
    "validation": (400, "validation_error"),
    "too_large": (413, "validation_error"),
    "not_found": (404, "not_found"),
    "conflict": (409, "conflict"),
    "forbidden": (403, "permission_denied"),
    "unauthorized": (401, "authentication_error"),
    "unavailable": (503, "internal_error"),
    "too_many": (429, "rate_limited"),
}
SECRET = "table SegmentsTable at store/dynamo.py line 1"


def every_error() -> list[errors.DomainError]:
    found: list[type[errors.DomainError]] = []
    pending = [errors.DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    made = []
    for cls in found:
        if cls is errors.NameTaken:
            made.append(errors.NameTaken("Donors"))
        elif cls is errors.Retryable:
            made.append(errors.Retryable("busy now", retry_after=7))
        else:
            made.append(cls(f"{cls.__name__} says so"))
    return made


ERRORS = [e for e in every_error() if e.kind != "internal"]


class Unmapped(errors.DomainError):
    kind = "something_new"


@pytest.fixture(autouse=True)
def no_metrics_kept() -> Iterator[None]:
    yield
    metrics.clear_metrics()


def body(resp: Any) -> dict[str, Any]:
    assert resp.headers["Content-Type"] == "application/json"
    parsed: dict[str, Any] = json.loads(resp.body)
    return parsed


def test_every_kind_of_domain_error_has_a_status_on_both_surfaces() -> None:
    kinds = {e.kind for e in ERRORS}
    assert kinds == set(MINERVA) == set(SHEEP)
    assert set(minerva.STATUS) == kinds and set(sheep.KINDS) == kinds


# ------------------------------------------------------------------ Minerva


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_minerva_renders_each_domain_error(exc: errors.DomainError) -> None:
    resp = minerva.SURFACE.domain(exc)
    assert resp.status_code == MINERVA[exc.kind]
    assert body(resp) == {"error": exc.message, "status_code": MINERVA[exc.kind], "api_request_id": request_id()}


def test_minerva_keeps_validation_details() -> None:
    details = [{"loc": ["body", "name"], "msg": "too long", "type": "string_too_long"}]
    resp = minerva.SURFACE.domain(errors.ValidationFailed("Invalid 'name'", details=details))
    assert resp.status_code == 422 and body(resp)["details"] == details


def test_minerva_duplicate_names_are_404_with_the_seed_message() -> None:
    resp = minerva.SURFACE.domain(errors.NameTaken("Donors"))
    assert (resp.status_code, body(resp)["error"]) == (404, "Segment name Donors already exists")


@pytest.mark.parametrize("exc", [Unmapped(SECRET), errors.DomainError(SECRET)], ids=["new kind", "base"])
def test_minerva_unknown_kinds_are_500_without_the_message(exc: errors.DomainError) -> None:
    resp = minerva.SURFACE.domain(exc)
    assert resp.status_code == 500
    assert body(resp) == {"error": "Internal server error", "status_code": 500, "api_request_id": request_id()}
    assert "SegmentsTable" not in resp.body


def test_minerva_busy_is_503_with_retry_after() -> None:
    resp = minerva.SURFACE.busy(errors.Retryable("The store is busy", retry_after=7))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert body(resp)["error"] == "The store is busy" and body(resp)["status_code"] == 503


def test_minerva_other_failures() -> None:
    cases = {
        "unsupported_body": (minerva.SURFACE.unsupported_body(), 422, "Request body must be a JSON object"),
        "no_route": (minerva.SURFACE.no_route(), 404, "Not Found"),
        "reused": (
            minerva.SURFACE.idempotency_key_reused(),
            422,
            "Idempotency-Key was already used with a different request body",
        ),
        "in progress": (
            minerva.SURFACE.idempotency_in_progress(),
            409,
            "A request with this Idempotency-Key is still in progress",
        ),
        "internal": (minerva.SURFACE.internal(), 500, "Internal server error"),
    }
    for name, (resp, status, message) in cases.items():
        assert resp.status_code == status, name
        assert body(resp) == {"error": message, "status_code": status, "api_request_id": request_id()}, name
    assert cases["in progress"][0].headers["Retry-After"] == "1"


def test_minerva_invalid_request_is_422_with_details() -> None:
    errs = [
        {
            "loc": ("body", "minerva_pids", 1),
            "msg": "Input should be a valid string",
            "type": "string_type",
            "input": 1,
            "ctx": {"x": object()},
        }
    ]
    resp = minerva.SURFACE.invalid_request(errs)
    assert resp.status_code == 422
    assert body(resp)["error"] == "Invalid 'minerva_pids.1': Input should be a valid string"
    assert body(resp)["details"] == [
        {"loc": ["body", "minerva_pids", 1], "msg": "Input should be a valid string", "type": "string_type"}
    ]  # no input echoed back


@pytest.mark.parametrize(
    ("errs", "message"),
    [
        (
            [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}],
            "Request body must be a JSON object",
        ),
        (
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be an object"}],
            "Request body must be a JSON object",
        ),
        (
            [{"type": "unsupported_content_type", "loc": ("body", "x"), "msg": "?"}],
            "Request body must be a JSON object",
        ),
        (
            [{"type": "missing", "loc": ("body", "segment_id"), "msg": "Field required"}],
            "Input data must contain a 'segment_id' field",
        ),
        (
            [{"type": "missing", "loc": ("query", "minerva_pid"), "msg": "Field required"}],
            "Missing required parameter 'minerva_pid'",
        ),
        (
            [{"type": "value_error", "loc": ("body", "name"), "msg": "Value error, name must be 1-255 characters"}],
            "Invalid 'name': name must be 1-255 characters",
        ),
        (
            [
                {"type": "uuid_parsing", "loc": ("body", "segment_id"), "msg": "Input should be a valid UUID"},
                {"type": "missing", "loc": ("body", "minerva_pids"), "msg": "Field required"},
            ],
            "Invalid 'segment_id': Input should be a valid UUID",
        ),  # the first bad field is named
        (
            [{"type": "int_parsing", "loc": ("limit",), "msg": "Input should be a valid integer"}],
            "Invalid 'limit': Input should be a valid integer",
        ),
        ([], "Invalid 'request': invalid value"),
    ],
)
def test_minerva_validation_messages(errs: list[dict[str, Any]], message: str) -> None:
    assert minerva.validation_message(errs) == message


# ------------------------------------------------------------------ SheepCRM


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_sheep_renders_each_domain_error(exc: errors.DomainError) -> None:
    resp = sheep.SURFACE.domain(exc)
    status, kind = SHEEP[exc.kind]
    assert resp.status_code == status
    parsed = body(resp)
    assert set(parsed) == {"error", "description", "type"}
    assert parsed["type"] == kind and parsed["description"] == exc.message and parsed["error"]


@pytest.mark.parametrize("exc", [Unmapped(SECRET), errors.DomainError(SECRET)], ids=["new kind", "base"])
def test_sheep_unknown_kinds_are_500_without_the_message(exc: errors.DomainError) -> None:
    resp = sheep.SURFACE.domain(exc)
    assert resp.status_code == 500
    assert body(resp) == {
        "error": "Internal server error",
        "description": "An unexpected error occurred",
        "type": "internal_error",
    }
    assert "SegmentsTable" not in resp.body


def test_sheep_busy_is_503_with_retry_after() -> None:
    resp = sheep.SURFACE.busy(errors.Retryable("The store is busy", retry_after=7))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert body(resp) == {"error": "Service unavailable", "description": "The store is busy", "type": "internal_error"}


def test_sheep_other_failures() -> None:
    cases = {
        "unsupported_body": (sheep.SURFACE.unsupported_body(), 400, "validation_error"),
        "no_route": (sheep.SURFACE.no_route(), 404, "not_found"),
        "reused": (sheep.SURFACE.idempotency_key_reused(), 400, "validation_error"),
        "in progress": (sheep.SURFACE.idempotency_in_progress(), 409, "conflict"),
        "internal": (sheep.SURFACE.internal(), 500, "internal_error"),
        "invalid": (
            sheep.SURFACE.invalid_request([{"type": "missing", "loc": ("body", "name")}]),
            400,
            "validation_error",
        ),
    }
    for name, (resp, status, kind) in cases.items():
        assert resp.status_code == status, name
        assert set(body(resp)) == {"error", "description", "type"} and body(resp)["type"] == kind, name
    assert cases["in progress"][0].headers["Retry-After"] == "1"
    assert body(cases["invalid"][0])["description"] == "'name' is required"


@pytest.mark.parametrize(
    ("errs", "message"),
    [
        (
            [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}],
            "The request body must be a JSON object",
        ),
        (
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be an object"}],
            "The request body must be a JSON object",
        ),
        ([{"type": "missing", "loc": ("body", "name"), "msg": "Field required"}], "'name' is required"),
        ([{"type": "missing", "loc": ("query", "name"), "msg": "Field required"}], "'name' is required"),
        (
            [{"type": "literal_error", "loc": ("body", "resource_type"), "msg": "Input should be 'person' or 'group'"}],
            "Invalid 'resource_type': Input should be 'person' or 'group'",
        ),
        (
            [{"type": "value_error", "loc": ("body", "rules", 0, "value"), "msg": "Value error, raw value must be"}],
            "Invalid 'rules.0.value': raw value must be",
        ),
        ([], "Invalid 'request': invalid value"),
    ],
)
def test_sheep_field_messages(errs: list[dict[str, Any]], message: str) -> None:
    assert sheep.field_message(errs) == message
