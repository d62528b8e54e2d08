"""DynamoDB that does not answer: a read or connect timeout, a refused or dropped connection.

The fault is raised where the network raises it, in botocore's `before-send` (the HTTP send), so
botocore's own retries run as they would; the store's sleeps between them are skipped. What comes
out once they are spent is the contract's retryable 503 with Retry-After on both surfaces, never
a 500.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from conftest import Api, ApiResponse, Org, make_org
from segments.store import dynamo

URL = "https://dynamodb.us-east-1.amazonaws.com/"
ERRORS: dict[str, Callable[[], Exception]] = {
    "read timeout": lambda: ReadTimeoutError(endpoint_url=URL),
    "connect timeout": lambda: ConnectTimeoutError(endpoint_url=URL),
    "no endpoint": lambda: EndpointConnectionError(endpoint_url=URL),
    "connection closed": lambda: ConnectionClosedError(endpoint_url=URL),
}


@pytest.fixture(autouse=True)
def no_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's and the store's backoffs without their sleeps (the retries still happen)."""
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(dynamo, "backoff", lambda attempt, base=0.05, cap=2.0: None)


@contextmanager
def unanswered(operation: str, error: Callable[[], Exception]) -> Iterator[list[str]]:
    """Every `operation` call of the store's client (but the authorizer's key lookups) raises
    `error()` as the HTTP send would. Yields the list of calls it failed."""
    failed: list[str] = []
    lock = threading.Lock()
    event = f"before-send.dynamodb.{operation}"
    unique_id = f"tests.test_store_timeouts:{id(failed)}"

    def hook(request: Any, **_: Any) -> None:
        body = json.loads(request.body or b"{}")
        if operation == "GetItem" and body.get("Key", {}).get("pk", {}).get("S", "").startswith("KEY#"):
            return None  # the authorizer's lookup answers: the route's own calls are tested
        with lock:
            failed.append(operation)
        raise error()

    events = dynamo.client().meta.events
    events.register_first(event, hook, unique_id=unique_id)
    try:
        yield failed
    finally:
        events.unregister(event, unique_id=unique_id)


def minerva_segment(api: Api, org: Org) -> str:
    return str(
        api.post("/v2/segments/create", key=org.key, body={"name": f"S {uuid.uuid4().hex[:6]}"}).json["segment_id"]
    )


ROUTES: dict[str, tuple[str, str, Callable[[Api, Org], ApiResponse]]] = {
    "minerva read": (
        "minerva",
        "GetItem",
        lambda api, org: api.get(f"/v2/segments/{minerva_segment(api, org)}", key=org.key),
    ),
    "minerva create": (
        "minerva",
        "TransactWriteItems",
        lambda api, org: api.post("/v2/segments/create", key=org.key, body={"name": "Timed out"}),
    ),
    "minerva add": (
        "minerva",
        "BatchWriteItem",
        lambda api, org: api.post(
            "/v2/segments/members/add",
            key=org.key,
            body={"segment_id": minerva_segment(api, org), "minerva_pids": ["p-time0001", "p-time0002"]},
        ),
    ),
    "sheep create": (
        "sheep",
        "TransactWriteItems",
        lambda api, org: api.post(
            f"/segments/v2/{org.bucket}/create", bearer=org.key, body={"name": "Timed out", "resource_type": "person"}
        ),
    ),
    "sheep count": (
        "sheep",
        "GetItem",
        lambda api, org: api.get(
            f"/segments/v2/{org.bucket}/segment/{uuid.UUID(minerva_segment(api, org)).hex}/count", bearer=org.key
        ),
    ),
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("kind", list(ERRORS))
def test_no_answer_from_dynamodb_is_a_retryable_503(api: Api, route: str, kind: str) -> None:
    org = make_org()
    surface, operation, request = ROUTES[route]
    calls: list[ApiResponse] = []
    with unanswered(operation, ERRORS[kind]) as failed:
        # the setup calls of a route (a segment to read) are not the faulted operation, or answer first
        failed_before = len(failed)
        calls.append(request(api, org))
    response = calls[0]
    assert len(failed) > failed_before, "the fault never fired"
    assert len(failed) - failed_before >= 2, failed  # botocore retried it, as it retries a network failure
    assert response.status == 503, response.body
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json
    if surface == "minerva":
        assert set(body) == {"error", "status_code", "api_request_id"} and body["status_code"] == 503
        assert body["api_request_id"] == response.headers["x-api-request-id"]
    else:
        assert body["type"] == "internal_error" and body["error"] == "Service unavailable"


def test_the_store_answers_again_once_dynamodb_does(api: Api) -> None:
    org = make_org()
    with unanswered("TransactWriteItems", ERRORS["read timeout"]):
        assert api.post("/v2/segments/create", key=org.key, body={"name": "Later"}).status == 503
    assert api.post("/v2/segments/create", key=org.key, body={"name": "Later"}).status == 200
