"""Assertions on the two wire formats' answers, as a caller sees them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import ApiResponse

REQ_ID = re.compile(r"^req_[0-9a-f]{32}$")
TIME_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SHEEP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


def assert_error(resp: ApiResponse, status: int, message: str | None = None) -> dict[str, Any]:
    """A Minerva error: `status`, the contract's body with this request's id (and `message`, if given)."""
    assert resp.status == status, resp.text
    body: dict[str, Any] = resp.json
    assert set(body) >= {"error", "status_code", "api_request_id"}
    assert body["status_code"] == status and REQ_ID.match(body["api_request_id"])
    assert resp.headers["x-api-request-id"] == body["api_request_id"]
    if message is not None:
        assert body["error"] == message
    return body


def assert_sheep_error(resp: ApiResponse, status: int, kind: str) -> dict[str, Any]:
    """A SheepCRM error: `status`, exactly {error, description, type} with this `type`."""
    assert resp.status == status, resp.text
    body: dict[str, Any] = resp.json
    assert set(body) == {"error", "description", "type"}
    assert body["type"] == kind
    assert REQ_ID.match(resp.headers["x-api-request-id"])
    return body
