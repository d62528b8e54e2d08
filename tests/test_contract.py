"""The generated OpenAPI is committed and true: schemathesis drives every documented operation.

Requests go through the same in-process gateway as the other tests (template routes, the real
authorizer, moto), wrapped as a WSGI app so schemathesis can call it without a network.
"""

from __future__ import annotations

import json
import os
import uuid
from io import BytesIO
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from moto import mock_aws
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ROOT, SUITE_PLANS, Api, make_org
from tools import openapi

SPEC = openapi.build()
schema = schemathesis.openapi.from_dict(SPEC)


def test_committed_openapi_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == openapi.render(), "docs/openapi.json is stale: run `make openapi`"


def test_every_template_route_is_documented() -> None:
    from tools import cfn

    template = cfn.load_template(ROOT / "template.yaml")
    documented = {(path, method.upper()) for path, ops in SPEC["paths"].items() for method in ops}
    for route in cfn.api_routes(template):
        if route.method == "ANY":
            continue  # catch-alls answer 404/405 and are kept out of the schema
        assert (route.path, route.method) in documented, f"{route.method} {route.path} is not in docs/openapi.json"


def test_every_operation_documents_its_errors() -> None:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"401", "500"} <= statuses, f"{method} {path} documents {sorted(statuses)}"
            if path.startswith("/segments/"):  # SheepCRM: validation is 400, another bucket's key 403
                assert "403" in statuses and "422" not in statuses, f"{method} {path}"
                validated = any(p["in"] in ("query", "header") for p in operation.get("parameters", []))
                assert "400" in statuses or not (validated or "requestBody" in operation), f"{method} {path}"
                continue
            assert "422" in statuses or (method == "get" and not operation.get("parameters")), f"{method} {path}"


class GatewayWSGI:
    """A WSGI app that hands each request to the in-process API Gateway emulation."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream: BytesIO = environ["wsgi.input"]
        body = stream.read(length).decode("utf-8", "replace") if length else None
        # the path as sent (PATH_INFO is already percent-decoded: a %3F would turn into a query)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not raw:
            query = environ.get("QUERY_STRING", "")
            raw = quote(environ["PATH_INFO"]) + (f"?{query}" if query else "")
        resp = self.api.request(environ["REQUEST_METHOD"], raw, body=body, headers=headers)
        reason = {200: "OK", 201: "Created"}.get(resp.status, "Status")
        out_headers = [(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"]
        if not any(k.lower() == "content-type" for k, _ in out_headers):
            out_headers.append(("Content-Type", "application/json"))
        start_response(f"{resp.status} {reason}", out_headers)
        return [resp.text.encode()]


@pytest.fixture(scope="module")
def gateway() -> Any:
    from conftest import ENV
    from tools.moto_atomic import make_moto_atomic

    saved = {
        k: os.environ.get(k)
        for k in [*ENV, "BULK_DELETE_QUEUE_URL", "EXPORT_QUEUE_URL", "EXPORTS_BUCKET", "MAILCHIMP_SYNC_QUEUE_URL"]
    }
    os.environ.update(ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    make_moto_atomic()
    with mock_aws():
        import boto3

        from conftest import _reset_core, template
        from tools import cfn

        _reset_core()
        cfn.create_tables(boto3.client("dynamodb", region_name="us-east-1"), template())
        cfn.create_usage_plans(boto3.client("apigateway", region_name="us-east-1"), template(), SUITE_PLANS)
        # SheepCRM action/delete queues its first chunk (nothing consumes it here)
        queues = cfn.create_queues(boto3.client("sqs", region_name="us-east-1"), template())
        os.environ["BULK_DELETE_QUEUE_URL"] = queues["BulkDeleteQueue"]
        # exports queue their first chunk and presign URLs of the exports bucket
        os.environ["EXPORT_QUEUE_URL"] = queues["ExportQueue"]
        buckets = cfn.create_buckets(boto3.client("s3", region_name="us-east-1"), template())
        os.environ["EXPORTS_BUCKET"] = buckets["ExportsBucket"]
        os.environ["MAILCHIMP_SYNC_QUEUE_URL"] = queues["MailchimpSyncQueue"]  # a full sync queues its first chunk
        _reset_core()
        org = make_org("contract-org", "contract")
        uids = seed_sheep(org)
        yield GatewayWSGI(Api()), org, uids
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True)
def aws_env() -> None:  # the module-scoped gateway owns the environment here
    return None


def seed_sheep(org: Any) -> list[str]:
    """Segments of every kind in the contract org (uids): fuzzed SheepCRM paths that name one reach
    the handlers' success paths, not only their 404s."""
    from segments.models import Actor, NewSegment
    from segments.usecases import members, segments

    who = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_contract", reason="rule")
    made = [
        segments.create_segment(who, NewSegment(name="Contract static", segment_type="static")),
        segments.create_segment(
            who,
            NewSegment(
                name="Contract dynamic",
                segment_type="dynamic",
                rules=[{"field": "tier", "operator": "equals", "value": "gold"}],
            ),
        ),
        segments.create_segment(who, NewSegment(name="Contract tree", segment_type="auxiliary")),
    ]
    members.add_members(who, made[0].segment_id, ["p-contract1", "p-contract2"])
    deleted = segments.create_segment(who, NewSegment(name="Contract deleted", segment_type="static"))
    segments.delete_segment(who, deleted.segment_id)
    return [uuid.UUID(s.segment_id).hex for s in [*made, deleted]]


def sheep_path_parameters(case: Any, org: Any, uids: list[str]) -> None:
    """Fuzzed SheepCRM requests name the key's own bucket (another bucket is refused by the gateway's
    cached policy before any handler runs: tests/test_sheep_*.py cover it) and, for about half of
    the generated uids, a segment that exists (static with members, dynamic, auxiliary, deleted)."""
    params = case.path_parameters or {}
    if "bucket" in params:
        params["bucket"] = org.bucket
    if "uid" in params:
        pick = sum(map(ord, str(params["uid"])))
        if pick % 2 == 0:
            params["uid"] = uids[pick // 2 % len(uids)]


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CONTRACT_EXAMPLES", "40")),
    derandomize=os.environ.get("CONTRACT_RANDOM") is None,  # CI is reproducible; CONTRACT_RANDOM=1 explores
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case: Any, gateway: Any) -> None:
    app, org, uids = gateway
    sheep = case.path.startswith("/segments/")
    auth = {"Authorization": f"Bearer {org.key}"} if sheep else {"x-api-key": org.key}
    if sheep:
        sheep_path_parameters(case, org, uids)
    response = case.call(headers=auth, app=app)
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    if not (response.status_code == 501 and case.path.endswith("/action/replace")):  # documented: not implemented
        checks.insert(0, not_a_server_error)
    case.validate_response(response, checks=checks)
    if response.status_code >= 400:
        body = json.loads(response.content)
        expected = {"error", "description", "type"} if sheep else {"error", "status_code", "api_request_id"}
        assert expected <= set(body), body
