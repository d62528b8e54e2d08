"""Shared fixtures: moto tables built from template.yaml, and API Gateway-shaped calls.

`api` sends a request the way API Gateway does, through the local stack's gateway (without
sockets): the template decides which function serves the route, the REQUEST authorizer of that
API runs first, API Gateway's own answers are the template's gateway responses, and the function
gets a proxy event shaped like `sam local generate-event apigateway aws-proxy`.

Nothing heavy is imported at load time (moto, boto3, the local stack): tests/unit, the fast tier,
loads this file too (it overrides `aws_env`) and never pays for them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

if TYPE_CHECKING:
    from tools.local_stack import Runtime

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"

ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "TABLE_NAME": "SegmentsTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    "POWERTOOLS_SERVICE_NAME": "segments",
    "POWERTOOLS_METRICS_NAMESPACE": "Segments",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
    "MAX_PIDS_PER_REQUEST": "10000",
    "PID_VALIDATION": "format",
}


# The suite's orgs are on `pro`, raised so that no functional test meets a 429 by its own speed
# (in-process requests run faster than the template's 100 a second); `standard` keeps the template's
# values, and tests/test_rate_limits.py tests the limits on it.
SUITE_PLANS = {"ProRateLimit": 1_000_000, "ProBurstLimit": 1_000_000}


@cache
def template() -> dict[str, Any]:
    from tools import cfn

    return cfn.load_template(TEMPLATE_PATH)


def _reset_core() -> None:
    from segments import aws

    aws.reset()  # clients, settings and what was built from them


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    _reset_core()
    yield
    _reset_core()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's retries without their sleeps (see helpers.faults.skip_backoff)."""
    from helpers.faults import skip_backoff

    skip_backoff(monkeypatch)


@pytest.fixture
def aws(aws_env: None) -> Any:
    """moto in-process, with every table of template.yaml created from the template."""
    import boto3
    from moto import mock_aws

    from tools import cfn
    from tools.moto_atomic import make_moto_atomic

    make_moto_atomic()
    with mock_aws():
        cfn.create_tables(boto3.client("dynamodb", region_name=REGION), template())
        cfn.create_usage_plans(boto3.client("apigateway", region_name=REGION), template(), SUITE_PLANS)
        yield


# ------------------------------------------------------------------ Lambda plumbing


def LambdaContext() -> Any:
    """A fresh Lambda context, as the local stack makes them."""
    from tools.local_stack import lambda_context

    return lambda_context("test-function")


@cache
def functions() -> Runtime:
    """Every handler of the template, imported once per test session (as a warm Lambda would be)."""
    from tools.local_stack import Runtime

    return Runtime(template(), ROOT)


def function_handler(logical_id: str) -> Any:
    return functions().handler(logical_id)


# ------------------------------------------------------------------ API Gateway-shaped calls


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def response_headers(result: dict[str, Any]) -> dict[str, str]:
    """The headers API Gateway sends back: `headers` merged with `multiValueHeaders` (joined)."""
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    return headers


def apigw_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    stage: str = "v1",
) -> dict[str, Any]:
    """A REST API proxy event as API Gateway (and `sam local generate-event`) shapes it, for
    calling one function directly, as `sam local invoke` does."""
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    headers = dict(headers or {})
    request_id = str(uuid.uuid4())
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "1234567890",
            "resourceId": "123456",
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": 1_700_000_000_000,
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "authorizer": authorizer,
        },
    }


class Api:
    """Calls routes of template.yaml the way API Gateway would, in-process, against moto.

    It is the local stack's gateway without its sockets: the template picks the function, the
    API's REQUEST authorizer runs first (with its result cache), gateway responses are rendered
    from the template, and the function gets a Lambda proxy event. One Api = one gateway (and one
    authorizer cache).
    """

    def __init__(self) -> None:
        from tools.local_stack import Gateway

        self.gateway = Gateway(template(), ROOT, functions())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        key: str | None = None,
        bearer: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> ApiResponse:
        headers = dict(headers or {})
        if key is not None:
            headers["x-api-key"] = key
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
        if body is not None and not isinstance(body, str | bytes):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        from tools.local_stack import Request

        raw_path = path + (f"?{urlencode(query)}" if query else "")
        resp = self.gateway.handle(Request(method=method, raw_path=raw_path, headers=list(headers.items()), body=raw))
        out: dict[str, str] = {}
        for name, value in resp.headers:
            out[name] = f"{out[name]}, {value}" if name in out else value
        return ApiResponse(resp.status, out, resp.body.decode())

    def get(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(aws: None) -> Api:
    return Api()


@dataclass
class Org:
    org_id: str
    bucket: str
    key: str
    key_id: str


def make_org(org_id: str = "org-a", bucket: str = "org-a", plan: str = "pro") -> Org:
    """An org with a key, on a usage plan (the gateway refuses a key whose org has none)."""
    from segments import auth
    from segments.external import plans

    created = auth.create_api_key(org_id, bucket, label="test")
    plans.set_plan(org_id, plan)
    return Org(org_id=org_id, bucket=bucket, key=created.api_key, key_id=created.key_id)


@pytest.fixture
def org(aws: None) -> Org:
    return make_org("org-a", "org-a")


@pytest.fixture
def other_org(aws: None) -> Org:
    return make_org("org-b", "org-b")


def query_string(params: dict[str, Any]) -> str:
    return urlencode(params)
