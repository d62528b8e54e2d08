"""Shared fixtures: moto tables built from template.yaml, and API Gateway-shaped calls.

`api` sends a request the way API Gateway does: the template decides which function serves the
route, the REQUEST authorizer of that API runs first (its 401/403 answered like the gateway),
and the function gets a proxy event shaped like `sam local generate-event apigateway aws-proxy`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from tools import cfn
from tools.moto_atomic import make_moto_atomic

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


@cache
def template() -> dict[str, Any]:
    return cfn.load_template(TEMPLATE_PATH)


def _reset_core() -> None:
    from segments import idempotency, storage

    storage.reset()
    idempotency.reset()


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
def aws(aws_env: None) -> Any:
    """moto in-process, with every table of template.yaml created from the template."""
    make_moto_atomic()
    with mock_aws():
        cfn.create_tables(boto3.client("dynamodb", region_name=REGION), template())
        yield


# ------------------------------------------------------------------ Lambda plumbing


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


@cache
def load_handler_module(code_uri: str) -> ModuleType:
    """Import functions/<dir>/handler.py under a unique name (every function has a handler.py)."""
    path = ROOT / code_uri / "handler.py"
    name = "fn_" + re.sub(r"\W", "_", code_uri.strip("/"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def function_handler(logical_id: str) -> Any:
    props = template()["Resources"][logical_id]["Properties"]
    module_name, attr = props["Handler"].rsplit(".", 1)
    assert module_name == "handler"
    return getattr(load_handler_module(props["CodeUri"]), attr)


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


def _path_regex(template_path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(template_path))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def _match_route(method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    """API Gateway's choice: static parts beat parameters, a specific method beats ANY."""
    candidates = []
    for route in cfn.api_routes(template()):
        m = _path_regex(route.path).match(path)
        if not m or route.method not in (method, "ANY"):
            continue
        static = sum(1 for part in route.path.split("/") if part and not part.startswith("{"))
        candidates.append((static, route.method != "ANY", route, m.groupdict()))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return candidates[0][2], candidates[0][3]


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
    """A REST API proxy event as API Gateway (and `sam local generate-event`) shapes it."""
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


def _authorizer_for(api_id: str) -> str:
    api = template()["Resources"][api_id]["Properties"]
    name = api["Auth"]["DefaultAuthorizer"]
    return api["Auth"]["Authorizers"][name]["FunctionArn"]["Fn::GetAtt"][0]


def _allowed(policy: dict[str, Any], method_arn: str) -> bool:
    allowed = False
    for statement in policy["policyDocument"]["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        hit = any(re.fullmatch(re.escape(r).replace(r"\*", ".*"), method_arn) for r in resources)
        if hit and statement["Effect"] == "Deny":
            return False
        allowed = allowed or (hit and statement["Effect"] == "Allow")
    return allowed


class Api:
    """Calls routes of template.yaml the way API Gateway would, in-process, against moto."""

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
        headers.setdefault("content-type", "application/json")
        query_str = {k: str(v) for k, v in (query or {}).items()} or None
        found = _match_route(method, path)
        if found is None:
            return ApiResponse(404, {}, json.dumps({"error": "Not Found", "status_code": 404}))
        route, params = found
        event = apigw_event(method, path, resource=route.path, body=body, headers=headers, query=query_str,
                            path_params=params or None)
        auth_fn = function_handler(_authorizer_for(route.api))
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:1234567890/v1/{method}{path}"
        auth_event = {**event, "type": "REQUEST", "methodArn": method_arn}
        identity = "x-api-key" if route.api == "MinervaApi" else "authorization"
        if not any(k.lower() == identity and v for k, v in headers.items()):
            return ApiResponse(401, {}, json.dumps({"error": "Unauthorized (no identity)", "status_code": 401}))
        try:
            policy = auth_fn(auth_event, LambdaContext())
        except Exception as exc:  # the gateway's reading of an authorizer's "Unauthorized"
            assert str(exc) == "Unauthorized", exc
            return ApiResponse(401, {}, json.dumps({"error": "Invalid or missing API key", "status_code": 401}))
        if not _allowed(policy, method_arn):
            return ApiResponse(403, {}, json.dumps({"error": "Forbidden", "status_code": 403}))
        event["requestContext"]["authorizer"] = {"principalId": policy["principalId"], **policy.get("context", {})}
        result = function_handler(route.function)(event, LambdaContext())
        return ApiResponse(result["statusCode"], response_headers(result), result.get("body") or "")

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


def make_org(org_id: str = "org-a", bucket: str = "org-a") -> Org:
    from segments import auth

    created = auth.create_api_key(org_id, bucket, label="test")
    return Org(org_id=org_id, bucket=bucket, key=created.api_key, key_id=created.key_id)


@pytest.fixture
def org(aws: None) -> Org:
    return make_org("org-a", "org-a")


@pytest.fixture
def other_org(aws: None) -> Org:
    return make_org("org-b", "org-b")


def query_string(params: dict[str, Any]) -> str:
    return urlencode(params)
