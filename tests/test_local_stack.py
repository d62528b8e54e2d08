"""The local stack over real HTTP, on the project's template.yaml (with the demo key): routes,
authorizers, gateway responses, docs. One stack for the class (moto's state is per process).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from helpers.http import REQUEST_ID, assert_gateway_ids, call

from tools import local_stack
from tools.local_stack import LocalStack, StackInfo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


# ---------------------------------------------------------------- the project's template


@pytest.fixture(scope="class")
def stack() -> Iterator[StackInfo]:
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        assert running.info is not None
        yield running.info


class TestProjectTemplate:
    def test_started_on_ephemeral_ports(self, stack: StackInfo) -> None:
        assert stack.port and stack.moto_port and stack.port != 3000
        assert stack.api_url == f"http://127.0.0.1:{stack.port}"
        assert stack.demo_key, "segments.auth.create_api_key should have made a demo key"
        banner = local_stack.banner(stack)
        assert f"-H 'x-api-key: {stack.demo_key}'" in banner
        assert f"{stack.api_url}/segments/v2/demo/create -H 'Authorization: Bearer {stack.demo_key}'" in banner

    def test_tables_exist_in_moto(self, stack: StackInfo) -> None:
        client = boto3.client("dynamodb", endpoint_url=stack.moto_url, region_name="us-east-1")
        assert set(client.list_tables()["TableNames"]) >= {"SegmentsTable", "IdempotencyTable"}

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/nope"), ("GET", "/v2/segments/members/add"), ("POST", "/v2/segments"), ("GET", "/")],
    )
    def test_unknown_route_is_minerva_404(self, stack: StackInfo, method: str, path: str) -> None:
        reply = call(stack.api_url, method, path, headers={"x-api-key": "whatever"})
        assert reply.status == 404
        assert reply.headers["Content-Type"] == "application/json"
        body = reply.json
        assert set(body) == {"error", "status_code", "api_request_id"}
        assert (body["error"], body["status_code"]) == ("Not Found", 404)
        assert REQUEST_ID.match(body["api_request_id"])
        assert body["api_request_id"] == reply.headers["x-api-request-id"]
        assert_gateway_ids(reply)

    def test_unknown_sheep_route_is_sheep_404(self, stack: StackInfo) -> None:
        reply = call(stack.api_url, "GET", "/segments/v2/demo/nothing/here")  # /{view_context} takes one level
        assert reply.status == 404
        assert reply.json == {"error": "Not found", "description": "No such endpoint", "type": "not_found"}
        assert_gateway_ids(reply)

    @pytest.mark.parametrize("headers", [{}, {"x-api-key": ""}, {"x-api-key": "   "}])
    def test_missing_api_key_is_401(self, stack: StackInfo, headers: dict[str, str]) -> None:
        reply = call(stack.api_url, "POST", "/v2/segments/create", {"name": "x"}, headers)
        assert reply.status == 401
        body = reply.json
        assert body == {
            "error": "Invalid or missing API key",
            "status_code": 401,
            "api_request_id": body["api_request_id"],
        }
        assert REQUEST_ID.match(body["api_request_id"])
        assert_gateway_ids(reply)

    def test_unknown_api_key_is_401(self, stack: StackInfo) -> None:
        reply = call(stack.api_url, "POST", "/v2/segments/create", {"name": "x"}, {"x-api-key": "sk_seg_nope"})
        assert reply.status == 401
        assert reply.json["error"] == "Invalid or missing API key"
        assert REQUEST_ID.match(reply.json["api_request_id"])

    def test_sheep_without_bearer_is_401(self, stack: StackInfo) -> None:
        for headers in ({}, {"Authorization": ""}):
            reply = call(stack.api_url, "POST", "/segments/v2/demo/create", {"name": "x"}, headers)
            assert reply.status == 401
            assert reply.json == {
                "error": "Unauthorized",
                "description": "A valid bearer token is required in the Authorization header",
                "type": "authentication_error",
            }
            assert_gateway_ids(reply)

    def test_sheep_other_bucket_is_403(self, stack: StackInfo) -> None:
        headers = {"Authorization": f"Bearer {stack.demo_key}"}
        reply = call(stack.api_url, "POST", "/segments/v2/someone-else/create", {"name": "x"}, headers)
        assert reply.status == 403
        assert reply.json["type"] == "permission_denied"
        assert_gateway_ids(reply)

    def test_body_over_6_mb_is_413(self, stack: StackInfo) -> None:
        body = b'{"name": "' + b"x" * local_stack.MAX_BODY_BYTES + b'"}'
        reply = call(stack.api_url, "POST", "/v2/segments/create", body, {"x-api-key": stack.demo_key or ""})
        assert reply.status == 413
        assert reply.json["error"] == "Request body too large (limit 6 MB)"
        assert REQUEST_ID.match(reply.json["api_request_id"])

    def test_create_then_duplicate(self, stack: StackInfo) -> None:
        headers = {"x-api-key": stack.demo_key or "", "content-type": "application/json"}
        first = call(stack.api_url, "POST", "/v2/segments/create", {"name": "My first segment"}, headers)
        assert first.status == 200, first.body
        body = first.json
        assert set(body) == {"api_request_id", "segment_id", "request_completed_at"}
        assert REQUEST_ID.match(body["api_request_id"])
        assert re.match(r"^[0-9a-f-]{36}$", body["segment_id"])
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", body["request_completed_at"])
        assert first.headers["x-amzn-RequestId"]

        again = call(stack.api_url, "POST", "/v2/segments/create", {"name": "My first segment"}, headers)
        assert again.status == 404
        assert again.json["error"] == "Segment name My first segment already exists"
        assert again.json["status_code"] == 404

    def test_sheep_create_with_demo_key(self, stack: StackInfo) -> None:
        headers = {"Authorization": f"Bearer {stack.demo_key}", "content-type": "application/json"}
        reply = call(
            stack.api_url, "POST", "/segments/v2/demo/create", {"name": "Sheep one", "resource_type": "person"}, headers
        )
        assert reply.status == 201, reply.body
        assert reply.json["name"] == "Sheep one"

    def test_docs(self, stack: StackInfo) -> None:
        page = call(stack.api_url, "GET", "/v2/docs")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"/v2/docs/openapi.json" in page.body and b"SwaggerUIBundle" in page.body
        spec = call(stack.api_url, "GET", "/v2/docs/openapi.json")
        assert spec.status == 200  # docs/openapi.json is committed
        assert spec.json == json.loads((ROOT / "docs/openapi.json").read_text())
