"""IAM: every DynamoDB call a function makes is allowed by its policy in template.yaml.

moto and the local stack don't enforce IAM; AWS does, and a call the policy forgot is an
AccessDenied, that is a 500, in production only. So every route of the template is run through the
gateway (happy and common error paths), with a botocore `before-call` hook on every DynamoDB client
recording (function, IAM action, resource); the function is the one the gateway is invoking (the
authorizers included). Each record must be allowed by that function's policy statements.

A transaction is checked per item (TransactWriteItems needs PutItem / UpdateItem / DeleteItem /
ConditionCheckItem on each item's table; TransactGetItems GetItem); BatchGetItem and BatchWriteItem
need their own actions on every table they touch; a Query or Scan of an index needs the index's ARN.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from helpers.bulk import Bulk, bulk_fixture, bulk_queue_fixture  # noqa: F401 - the `bulk`, `bulk_queue` fixtures
from helpers.exports import Exports, export_queue_fixture, exports_fixture  # noqa: F401 - `export_queue`, `exports`
from helpers.faults import inject
from helpers.mailchimp import Sync, mailchimp_fixture, membership_event, set_credentials  # noqa: F401 - `mailchimp`
from helpers.rules import Rig, members_of, rig_fixture, sheep_segment  # noqa: F401 - the `rig` fixture
from helpers.signals import (
    DATA,
    Signals,
    add,
    create_segment,
    failures,
    ingest,
    person_event,
    remove,
    signals_fixture,  # noqa: F401 - the `signals` fixture
    sqs_batch,
    sqs_record,
)
from helpers.webhooks import exercise_webhooks
from helpers.webhooks import rig_fixture as webhook_rig

from conftest import Api, Org, functions, make_org, template
from segments import aws, errors, queues, store
from segments.models import Actor
from segments.store import people
from segments.usecases import members
from tools import cfn
from tools.local_stack import Functions

# SAM policy templates (https://github.com/aws/serverless-application-model, policy_templates.json)
# expanded to the DynamoDB actions they grant, on the table and its indexes.
SAM_POLICY_TEMPLATES: dict[str, list[str]] = {
    "DynamoDBCrudPolicy": [
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ],
    "DynamoDBReadPolicy": [
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    ],
    "DynamoDBWritePolicy": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# The IAM action each S3 operation the service uses needs (a multipart upload's calls are PutObject's).
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
}


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # dynamodb:GetItem
    resource: str  # the table's (or index's) ARN
    operation: str  # the API operation that needed it


def table_arn(table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{cfn.REGION}:{cfn.ACCOUNT_ID}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def required(operation: str, request: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(IAM action, resource ARN) pairs a DynamoDB request needs."""
    if operation in ("TransactWriteItems", "TransactGetItems"):
        for item in request.get("TransactItems", []):
            ((kind, spec),) = item.items()
            yield f"dynamodb:{_TRANSACT_ACTIONS[kind]}", table_arn(spec["TableName"])
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table in request.get("RequestItems", {}):
            yield f"dynamodb:{operation}", table_arn(table)
    elif operation in ("SendMessage", "SendMessageBatch"):
        yield f"sqs:{operation.removesuffix('Batch')}", queue_arn(request["QueueUrl"])
    elif operation == "GetSecretValue":  # a secret's ARN ends with a random suffix of 6 characters
        yield (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{cfn.REGION}:{cfn.ACCOUNT_ID}:secret:{request['SecretId']}-AbCdEf",
        )
    elif operation in ("Encrypt", "Decrypt"):  # the template's one key (Decrypt names none: the blob does)
        yield f"kms:{operation}", kms_key_arn("WebhookSecretsKey")
    elif operation == "PutEvents":
        for entry in request.get("Entries", []):
            bus = entry.get("EventBusName") or "default"
            yield "events:PutEvents", bus if bus.startswith("arn:") else bus_arn(bus)
    else:
        yield f"dynamodb:{operation}", table_arn(request["TableName"], request.get("IndexName"))


def queue_arn(url: str) -> str:
    return f"arn:aws:sqs:{cfn.REGION}:{cfn.ACCOUNT_ID}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def kms_key_arn(logical_id: str) -> str:
    return cfn.Resolver(template()).get_att(logical_id, "Arn")


def bus_arn(name: str) -> str:
    return f"arn:aws:events:{cfn.REGION}:{cfn.ACCOUNT_ID}:event-bus/{name}"


def policy_statements(tpl: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """A function's Allow statements, SAM policy templates expanded, intrinsics resolved."""
    resolver = cfn.Resolver(tpl)
    statements: list[dict[str, Any]] = []
    for policy in (tpl["Resources"][function].get("Properties") or {}).get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in resolver.resolve(policy["Statement"]):
                statements.append(statement)
            continue
        ((name, params),) = policy.items() if isinstance(policy, dict) else ((policy, None),)
        if name not in SAM_POLICY_TEMPLATES:
            raise AssertionError(f"{function}: policy {name!r} has no expansion in SAM_POLICY_TEMPLATES")
        table = resolver.resolve(params["TableName"])
        statements.append(
            {
                "Effect": "Allow",
                "Action": SAM_POLICY_TEMPLATES[name],
                "Resource": [table_arn(table), table_arn(table, "*")],
            }
        )
    return statements


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Allowed by some Allow statement and denied by none (actions are case-insensitive)."""

    def matches(statement: dict[str, Any]) -> bool:
        return any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement.get("Action", []))
        ) and any(fnmatch.fnmatchcase(resource, r) for r in _as_list(statement.get("Resource", [])))

    if any(s.get("Effect") == "Deny" and matches(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and matches(s) for s in statements)


class Recorder:
    """Which function is running (set around every invocation the gateway makes) and what it calls."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: set[Call] = set()
        self.routes: set[tuple[str, str, str]] = set()  # (function, resource path, method) invoked

    def s3_hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """S3 calls by their API parameters (a presigned URL is signed with them too: it needs the
        same right as the call it stands for)."""
        if self.function is None:
            return
        resource = f"arn:aws:s3:::{params['Bucket']}/{params.get('Key', '')}"
        self.calls.add(Call(self.function, S3_ACTIONS[model.name], resource, model.name))

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.function is None:
            return  # test setup, not a function
        body = params.get("body") or b"{}"
        request = json.loads(body) if isinstance(body, bytes | str) else dict(body)
        for action, resource in required(model.name, request):
            self.calls.add(Call(self.function, action, resource, model.name))


@pytest.fixture
def recorder(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    create_client = botocore.session.Session.create_client
    invoke = Functions.invoke

    def hooked_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, service_name, *args, **kwargs)
        if service_name in ("dynamodb", "events", "sqs", "secretsmanager", "kms"):
            client.meta.events.register(f"before-call.{service_name}", rec.hook)
        if service_name == "s3":
            client.meta.events.register("before-parameter-build.s3", rec.s3_hook)
        return client

    def traced_invoke(self: Functions, logical_id: str, event: dict[str, Any]) -> Any:
        outer, rec.function = rec.function, logical_id
        if "httpMethod" in event and "resource" in event and event.get("type") != "REQUEST":
            rec.routes.add((logical_id, event["resource"], event["httpMethod"]))
        try:
            return invoke(self, logical_id, event)
        finally:
            rec.function = outer

    monkeypatch.setattr(botocore.session.Session, "create_client", hooked_client)
    monkeypatch.setattr(Functions, "invoke", traced_invoke)
    _reset_clients()  # clients made from now on carry the hook
    yield rec
    _reset_clients()


def _reset_clients() -> None:
    aws.reset()


def exercise_every_route(api: Api, org: Org, other: Org) -> None:
    """Happy and common error paths of every route of template.yaml."""
    k, idem = org.key, {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    missing = str(uuid.uuid4())

    # authorizers: a good key, an unknown key
    assert api.get("/v2/segments", key="sk_seg_unknown").status == 401
    assert api.post(f"/segments/v2/{org.bucket}/create", bearer="sk_seg_unknown", body={}).status == 401

    # Minerva create
    created = api.post("/v2/segments/create", key=k, body={"name": "Alpha", "description": "d"})
    assert created.status == 200, created.text
    seg = created.json["segment_id"]
    assert api.post("/v2/segments/create", key=k, body={"name": "alpha"}).status == 404
    assert api.post("/v2/segments/create", key=k, body={"nom": 1}).status == 422
    for _ in range(2):
        assert api.post("/v2/segments/create", key=k, body={"name": "Beta"}, headers=idem).status == 200
    assert api.get("/v2/segments/create", key=k).status == 405
    assert api.post("/v1/segments/create", key=k, body={"name": "x"}).status == 404

    # add / remove
    body = {"segment_id": seg, "minerva_pids": [f"p-{i}" for i in range(60)] + ["bad"]}
    add_key = {"Idempotency-Key": f"a-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.post("/v2/segments/members/add", key=k, body=body, headers=add_key).status == 200
    assert api.post("/v2/segments/members/add", key=k, body=body).status == 200  # all redundant
    assert api.post("/v2/segments/members/add", key=k, body={**body, "segment_id": missing}).status == 404
    assert api.post("/v2/segments/members/add", key=k, body={"segment_id": seg}).status == 422
    removal = {"segment_id": seg, "minerva_pids": ["p-1", "p-2", "p-999"]}
    remove_key = {"Idempotency-Key": f"r-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.post("/v2/segments/members/remove", key=k, body=removal, headers=remove_key).status == 200
    assert api.post("/v2/segments/members/add", key=k, body=removal).status == 200  # re-add after removal
    assert api.post("/v2/segments/members/remove", key=k, body={**removal, "segment_id": missing}).status == 404

    # reads
    assert api.get("/v2/segments/members", key=k, query={"segment_id": seg}).status == 200
    assert api.get("/v2/segments/members", key=k, query={"segment_id": seg, "page": 3}).status == 200
    assert api.get("/v2/segments/members", key=k, query={"segment_id": missing}).status == 404
    assert api.get("/v2/segments/members", key=k, query={"segment_id": seg, "cursor": "bad"}).status == 422
    listed = api.get("/v2/segments", key=k, query={"limit": 1})
    assert listed.status == 200
    assert api.get("/v2/segments", key=k, query={"cursor": listed.json["results"]["next_cursor"]}).status == 200
    assert api.get(f"/v2/segments/{seg}", key=k).status == 200
    assert api.get(f"/v2/segments/{missing}", key=k).status == 404
    assert api.get("/v2/segments/memberships", key=k, query={"minerva_pid": "p-3"}).status == 200
    history = api.get(f"/v2/segments/{seg}/history", key=k, query={"limit": 5})
    assert history.status == 200
    cursor = history.json["results"]["next_cursor"]
    assert api.get(f"/v2/segments/{seg}/history", key=k, query={"cursor": cursor}).status == 200
    assert api.get(f"/v2/segments/{missing}/history", key=k).status == 404

    # PATCH: rename (transaction), case-only rename and description (single update), taken name, replay, 404
    patch_key = {"Idempotency-Key": f"p-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.patch(f"/v2/segments/{seg}", key=k, body={"name": "Gamma"}, headers=patch_key).status == 200
    assert api.patch(f"/v2/segments/{seg}", key=k, body={"name": "GAMMA", "description": None}).status == 200
    assert api.patch(f"/v2/segments/{seg}", key=k, body={"name": "Beta"}).status == 404
    assert api.patch(f"/v2/segments/{missing}", key=k, body={"name": "Zeta"}).status == 404
    assert api.patch(f"/v2/segments/{seg}", key=k, body={"name": None}).status == 422

    # SheepCRM create: plain, with a parent (read), duplicate, bad parent, another bucket, replay
    sheep = f"/segments/v2/{org.bucket}/create"
    parent = api.post(sheep, bearer=k, body={"name": "Parent", "resource_type": "person", "segment_type": "auxiliary"})
    assert parent.status == 201, parent.text
    child = {"name": "Child", "resource_type": "person", "parent_segment": parent.json["uri"]}
    assert api.post(sheep, bearer=k, body=child).status == 201
    assert api.post(sheep, bearer=k, body=child).status == 409
    bad_parent = {**child, "name": "Orphan", "parent_segment": f"/{org.bucket}/segment/{uuid.uuid4().hex}/"}
    assert api.post(sheep, bearer=k, body=bad_parent).status == 400
    assert api.post(f"/segments/v2/{other.bucket}/create", bearer=k, body=child).status == 403
    sheep_key = {"Idempotency-Key": f"s-{uuid.uuid4()}"}
    for _ in range(2):
        replay = api.post(sheep, bearer=k, body={"name": "Replayed", "resource_type": "person"}, headers=sheep_key)
        assert replay.status == 201, replay.text

    # SheepCRM reads: listings (a second page), find, trees, count and members (static: members by hand)
    base = f"/segments/v2/{org.bucket}"
    assert api.get(base, bearer=k, query={"page_size": 1, "page": 2}).status == 200
    assert api.get(f"{base}/all", bearer=k).status == 200
    assert api.get(f"{base}/find", bearer=k, query={"name": "par"}).status == 200
    assert api.get(f"{base}/trees", bearer=k).status == 200
    assert api.get(f"{base}/crm", bearer=k).status == 200
    static = api.post(sheep, bearer=k, body={"name": "Hand", "resource_type": "person", "segment_type": "static"})
    assert static.status == 201, static.text
    static_id = str(uuid.UUID(static.json["uid"]))
    assert (
        api.post(
            "/v2/segments/members/add", key=k, body={"segment_id": static_id, "minerva_pids": ["p-1", "p-2"]}
        ).status
        == 200
    )
    dynamic_id = str(uuid.UUID(replay.json["uid"]))
    assert (
        api.post("/v2/segments/members/add", key=k, body={"segment_id": dynamic_id, "minerva_pids": ["p-1"]}).status
        == 422
    )
    assert api.get(f"{base}/segment/{static.json['uid']}/count", bearer=k).status == 200
    assert api.get(f"{base}/segment/{static.json['uid']}/all", bearer=k, query={"page_size": 1}).status == 200
    assert api.get(f"{base}/segment/{uuid.uuid4().hex}/all", bearer=k).status == 404

    # SheepCRM changes: rename (transaction), definition change (single update), a new parent (walk and checks),
    # replay, taken name; delete, restore, restore refused
    seg_path = f"{base}/segment/{static.json['uid']}"
    put_key = {"Idempotency-Key": f"u-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.request("PUT", seg_path, bearer=k, body={"name": "Handpicked"}, headers=put_key).status == 200
    assert (
        api.request(
            "PUT", seg_path, bearer=k, body={"uris_include": [f"/{org.bucket}/person/p-9/"], "tags": ["t"]}
        ).status
        == 200
    )
    assert api.request("PUT", seg_path, bearer=k, body={"parent_segment": parent.json["uri"]}).status == 200
    assert api.request("PUT", seg_path, bearer=k, body={"name": "Child"}).status == 409
    del_key = {"Idempotency-Key": f"x-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.delete(seg_path, bearer=k, headers=del_key).status == 200
    assert api.post(f"{seg_path}/restore", bearer=k).status == 200
    assert api.post(f"{seg_path}/restore", bearer=k).status == 409
    assert api.delete(seg_path, bearer=k).status == 200
    assert api.post(sheep, bearer=k, body={"name": "Handpicked", "resource_type": "person"}).status == 201
    assert api.post(f"{seg_path}/restore", bearer=k).status == 409

    # signals: the three reads, a missing segment, a bad cursor
    for kind in ("deaths", "job_changes", "relocations"):
        assert api.get(f"/v2/segments/signals/{kind}", key=k, query={"segment_id": seg}).status == 200
        assert api.get(f"/v2/segments/signals/{kind}", key=k, query={"segment_id": missing}).status == 404
    assert api.get("/v2/segments/signals/deaths", key=k, query={"segment_id": seg, "cursor": "x"}).status == 422

    # SheepCRM records and bulk actions: config, lookup (by PID and by name), signals, a bulk delete
    # queued (replayed) and refused, replace (501), the notification
    people.put(org.org_id, "p-1", {"first_name": "Ada"})
    bulk = api.post(sheep, bearer=k, body={"name": "Bulk", "resource_type": "person", "segment_type": "static"})
    assert bulk.status == 201, bulk.text
    uid = bulk.json["uid"]
    members_body = {"segment_id": str(uuid.UUID(uid)), "minerva_pids": ["p-1", "p-2"]}
    assert api.post("/v2/segments/members/add", key=k, body=members_body).status == 200
    seg_base = f"{base}/segment/{uid}"
    assert api.get(f"{seg_base}/config", bearer=k).status == 200
    assert api.get(f"{base}/segment/{uuid.uuid4().hex}/config", bearer=k).status == 404
    assert api.get(f"{seg_base}/lookup", bearer=k, query={"q": "p-1"}).status == 200
    assert api.get(f"{seg_base}/lookup", bearer=k, query={"q": "ada"}).status == 200
    assert api.get(f"{seg_base}/signals", bearer=k, query={"type": "death"}).status == 200
    assert api.get(f"{seg_base}/signals", bearer=k, query={"type": "birth"}).status == 400
    bulk_key = {"Idempotency-Key": f"b-{uuid.uuid4()}"}
    for _ in range(2):
        started = api.post(f"{seg_base}/action/delete", bearer=k, query={"batch_size": 10}, headers=bulk_key)
        assert started.status == 200, started.text
    assert api.post(f"{seg_base}/action/delete", bearer=k, query={"batch_size": 2501}).status == 400
    assert api.post(f"{seg_base}/action/replace", bearer=k).status == 501
    job = started.json["notification_uri"].split("/")[3]
    sync_path, sync_key = f"{seg_base}/all/sync_mailchimp", {"Idempotency-Key": f"m-{uuid.uuid4()}"}
    for _ in range(2):  # a full Mailchimp sync queued (replayed), a bad batch size
        assert api.get(sync_path, bearer=k, query={"mailchimp_batch_size": "100"}, headers=sync_key).status == 200
    assert api.get(sync_path, bearer=k, query={"mailchimp_batch_size": "0"}).status == 400
    assert api.get(f"{base}/notification/{job}", bearer=k).status == 200
    assert api.get(f"{base}/notification/{uuid.uuid4().hex}", bearer=k).status == 404

    # exports (Minerva: started, replayed, read, listed, refused; SheepCRM: the three reports, a
    # journal) and fieldsets (list, generated, create, read, delete both ways)
    exp_key = {"Idempotency-Key": f"e-{uuid.uuid4()}"}
    for _ in range(2):
        exported = api.post("/v2/segments/exports", key=k, body={"segment_id": seg, "format": "csv"}, headers=exp_key)
        assert exported.status == 202, exported.text
    export_id = exported.json["export_id"]
    assert api.get(f"/v2/segments/exports/{export_id}", key=k).status == 200
    assert api.get(f"/v2/segments/exports/{missing}", key=k).status == 404
    assert api.get("/v2/segments/exports", key=k, query={"segment_id": seg}).status == 200
    assert api.post("/v2/segments/exports", key=k, body={"segment_id": missing, "format": "csv"}).status == 404
    for kind in ("excel", "xlsx", "pdf"):
        assert api.get(f"{seg_base}/all/{kind}", bearer=k).status in (200, 429)
    receipt = api.get(f"{seg_base}/all/excel", bearer=other.key)
    assert receipt.status == 403
    journals = api.get(f"{base}/journal/{uuid.UUID(export_id).hex}", bearer=k)
    assert journals.status == 200, journals.text
    assert api.get(f"{base}/journal/{uuid.uuid4().hex}", bearer=k).status == 404
    fieldset_base = f"{base}/fieldset"
    assert api.get(fieldset_base, bearer=k, query={"resource": "person"}).status == 200
    made = api.post(fieldset_base, bearer=k, query={"fields": "first_name"})
    assert made.status == 201, made.text
    assert api.get(f"{fieldset_base}/{made.json['uid']}", bearer=k).status == 200
    assert api.get(f"{fieldset_base}/person", bearer=k).status == 200
    # a segment's fieldset (the Mailchimp sync's merge fields): create and update read it, both surfaces
    chosen = {"fieldset_id": made.json["uid"]}
    assert api.post("/v2/segments/create", key=k, body={"name": "Mailing", **chosen}).status == 200
    assert api.post("/v2/segments/create", key=k, body={"name": "Mailing 2", "fieldset_id": missing}).status == 404
    assert api.patch(f"/v2/segments/{seg}", key=k, body=chosen).status == 200
    assert api.post(sheep, bearer=k, body={"name": "Sheep mailing", "resource_type": "person", **chosen}).status == 201
    assert api.request("PUT", seg_base, bearer=k, body=chosen).status == 200
    assert api.request("PUT", seg_base, bearer=k, body={"fieldset_id": uuid.uuid4().hex}).status == 404
    assert api.delete(fieldset_base, bearer=k, query={"uid": made.json["uid"]}).status == 200
    assert api.delete(f"{fieldset_base}/{made.json['uid']}", bearer=k).status == 404

    # DELETE: replay, then 404
    delete_key = {"Idempotency-Key": f"d-{uuid.uuid4()}"}
    for _ in range(2):
        assert api.delete(f"/v2/segments/{seg}", key=k, headers=delete_key).status == 200
    assert api.delete(f"/v2/segments/{seg}", key=k).status == 404


def test_every_dynamodb_call_of_every_route_is_allowed_by_the_functions_policy(
    api: Api, recorder: Recorder, bulk_queue: str, export_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, other = make_org("org-a", "org-a"), make_org("org-b", "org-b")
    exercise_every_route(api, org, other)
    exercise_webhooks(api, org, other, webhook_rig(None, monkeypatch))  # routes, fan-out and deliveries
    tpl = template()
    not_run = sorted(
        f"{r.function} {r.method} {r.path}"
        for r in cfn.api_routes(tpl)
        if not any(
            fn == r.function and path == r.path and (r.method == "ANY" or method == r.method)
            for fn, path, method in recorder.routes
        )
    )
    assert not_run == [], "routes the IAM scenario does not run (add them to exercise_every_route):\n" + "\n".join(
        not_run
    )
    assert {c.function for c in recorder.calls} >= {
        "ApiKeyAuthorizerFunction",
        "BearerAuthorizerFunction",
        "CreateSegmentFunction",
        "SheepSegmentsFunction",
        "SheepQueryFunction",
        "SheepRecordsFunction",
        "SheepActionsFunction",
    }
    assert any(c.function == "SheepActionsFunction" and c.action == "sqs:SendMessage" for c in recorder.calls)
    webhook_calls = {(c.function, c.action) for c in recorder.calls}
    assert {
        ("WebhooksApiFunction", "kms:Encrypt"),
        ("WebhooksApiFunction", "sqs:SendMessage"),
        ("WebhookFanoutFunction", "dynamodb:Query"),
        ("WebhookDeliveryFunction", "kms:Decrypt"),
        ("WebhookDeliveryFunction", "dynamodb:UpdateItem"),
        ("WebhookDeliveryFunction", "sqs:SendMessage"),
    } <= webhook_calls
    assert ("SheepExportsFunction", "sqs:SendMessage") in {(c.function, c.action) for c in recorder.calls}
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_the_checker_refuses_what_a_policy_does_not_grant() -> None:
    tpl = template()
    table = table_arn("SegmentsTable")
    read_only = policy_statements(tpl, "SegmentQueryFunction")
    assert allowed(read_only, "dynamodb:Query", table_arn("SegmentsTable", "gsi3"))
    assert not allowed(read_only, "dynamodb:PutItem", table)
    assert not allowed(read_only, "dynamodb:GetItem", table_arn("IdempotencyTable"))
    old_sheep = [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"], "Resource": table}]
    assert not allowed(old_sheep, "dynamodb:GetItem", table)
    assert not allowed(
        [*old_sheep, {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}], "dynamodb:PutItem", table
    )
    crud = policy_statements(
        {"Resources": {"F": {"Properties": {"Policies": [{"DynamoDBCrudPolicy": {"TableName": "SegmentsTable"}}]}}}},
        "F",
    )
    assert allowed(crud, "dynamodb:Query", table_arn("SegmentsTable", "gsi1"))
    assert not allowed(crud, "dynamodb:TransactWriteItems", table)


def test_requirements_of_transactions_and_batches() -> None:
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "T"}},
            {"ConditionCheck": {"TableName": "T"}},
            {"Update": {"TableName": "U"}},
            {"Delete": {"TableName": "T"}},
        ]
    }
    assert list(required("TransactWriteItems", transact)) == [
        ("dynamodb:PutItem", table_arn("T")),
        ("dynamodb:ConditionCheckItem", table_arn("T")),
        ("dynamodb:UpdateItem", table_arn("U")),
        ("dynamodb:DeleteItem", table_arn("T")),
    ]
    assert list(required("BatchGetItem", {"RequestItems": {"T": {}, "U": {}}})) == [
        ("dynamodb:BatchGetItem", table_arn("T")),
        ("dynamodb:BatchGetItem", table_arn("U")),
    ]
    assert list(required("Query", {"TableName": "T", "IndexName": "gsi1"})) == [
        ("dynamodb:Query", table_arn("T", "gsi1"))
    ]


def test_every_aws_call_of_the_event_consumers_is_allowed_by_the_functions_policy(
    recorder: Recorder, signals: Signals, api: Api
) -> None:
    """The queue consumer and the two stream consumers, on the events they really get: each person
    event type, a duplicate, a late joiner and a removal (feed reconciliation), then publishing."""
    org = make_org("org-a", "org-a")
    pid, late = "p-a1b2c3d4e5f6", "p-late01"
    segment_id = create_segment(api, org.key, "Watched")
    add(api, org.key, segment_id, pid)
    events = [person_event(kind, pid) for kind in DATA] + [person_event(kind, late) for kind in DATA]
    profile = person_event("profile", pid, org_id=org.org_id, data={"attributes": {"tier": "gold"}})
    records = [sqs_record(e) for e in [*events, events[0], profile]]
    assert failures(functions().invoke("SignalsIngestFunction", sqs_batch(records))) == []
    add(api, org.key, segment_id, late)  # a late joiner: its signals are copied by the feed function
    remove(api, org.key, segment_id, pid)  # a removal: its feed entries are deleted
    paused = create_segment(api, org.key, "Paused")  # a signal held while deleted, fed on its restore
    add(api, org.key, paused, late)
    assert api.delete(f"/v2/segments/{paused}", key=org.key).status == 200
    assert (
        failures(functions().invoke("SignalsIngestFunction", sqs_batch([sqs_record(person_event("death", late))])))
        == []
    )
    older = {**profile, "event_id": "evt-older", "observed_at": "2020-01-01T00:00:00Z"}  # ignored as older
    assert failures(functions().invoke("SignalsIngestFunction", sqs_batch([sqs_record(older)]))) == []
    assert (
        api.post(f"/segments/v2/{org.bucket}/segment/{paused.replace('-', '')}/restore", bearer=org.key).status == 200
    )
    batch = signals.stream_batch()
    assert failures(functions().invoke("SignalFeedFunction", {"Records": batch})) == []
    batch += signals.stream_batch()
    assert failures(functions().invoke("PublisherFunction", {"Records": batch})) == []
    ran = {c.function for c in recorder.calls}
    assert ran >= {"SignalsIngestFunction", "SignalFeedFunction", "PublisherFunction"}, ran
    assert any(c.action == "events:PutEvents" for c in recorder.calls)
    assert ("SignalsIngestFunction", "dynamodb:ConditionCheckItem") in {(c.function, c.action) for c in recorder.calls}
    assert ("SignalFeedFunction", "dynamodb:GetItem") in {(c.function, c.action) for c in recorder.calls}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_the_rule_segment_consumers_is_allowed_by_the_functions_policy(
    recorder: Recorder, rig: Rig, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RuleMembershipFunction (person records and segment definitions from the stream) and
    RebuildFunction (chunks, a redelivered chunk, a superseded and a deleted segment's messages):
    dynamic, hybrid and static segments, person records created and changed, members added and
    removed by rule, under PID_VALIDATION=registry."""
    monkeypatch.setenv("REBUILD_CHUNK_SIZE", "3")
    monkeypatch.setenv("PID_VALIDATION", "registry")
    store.reset()
    org = make_org("org-a", "org-a")
    gold = [{"field": "tier", "operator": "equals", "value": "gold"}]
    for i in range(7):
        people.put(org.org_id, f"p-i{i}", {"tier": "gold" if i % 2 else "silver"})
    dynamic = sheep_segment(api, org, "Gold", rules=gold)
    hybrid = sheep_segment(api, org, "Hybrid", segment_type="hybrid", rules=gold, include=["p-i0"], exclude=["p-i1"])
    sheep_segment(api, org, "Static", segment_type="static", include=["p-i2"])
    # not gold: the rebuild removes it (written as the rules engine writes: dynamic segments take no members by hand)
    members.add_members(
        Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_" + "2" * 32, reason="rule"), dynamic, ["p-i2"]
    )

    def settle(*, redeliver_first: bool = False) -> None:
        for _ in range(100):
            records = rig.stream()
            if records:
                assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
            bodies = rig.messages()
            for body in bodies:
                assert failures(functions().invoke("RebuildFunction", sqs_batch([sqs_record(body)]))) == []
                if redeliver_first:
                    redeliver_first = False
                    again = sqs_batch([sqs_record(body, receive_count=2)])
                    assert failures(functions().invoke("RebuildFunction", again)) == []
            if not records and not bodies:
                return
        raise AssertionError("did not settle")

    settle(redeliver_first=True)
    for i, tier in ((2, "gold"), (3, "silver"), (9, "gold")):
        ingest(
            person_event(
                "profile",
                f"p-i{i}",
                org_id=org.org_id,
                observed_at=f"2024-02-01T00:00:0{i}.000000Z",
                data={"attributes": {"tier": tier}},
            )
        )
    settle()
    assert "p-i9" in members_of(api, org, dynamic) and "p-i3" not in members_of(api, org, dynamic)
    # a crash between the member writes and the lease commit: the retried record takes the dirty
    # lease and recounts (a Query), and the ledger of the dead attempt is read (a Query)
    ingest(
        person_event(
            "profile",
            "p-i4",
            org_id=org.org_id,
            observed_at="2024-02-01T00:00:10.000000Z",
            data={"attributes": {"tier": "gold"}},
        )
    )
    records = rig.stream()
    is_commit = lambda request: "current_size" in request.get("UpdateExpression", "")  # noqa: E731
    with inject("UpdateItem", "ValidationException", when=is_commit, times=1) as crash:
        assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) != []
    assert crash.hits == 1
    queried = {c for c in recorder.calls if (c.function, c.action) == ("RuleMembershipFunction", "dynamodb:Query")}
    recorder.calls -= queried  # only the retry's own calls count below
    assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
    assert "p-i4" in members_of(api, org, dynamic)
    assert any(c.function == "RuleMembershipFunction" and c.action == "dynamodb:Query" for c in recorder.calls)
    assert api.delete(f"/v2/segments/{hybrid}", key=org.key).status == 200
    settle()
    ran = {c.function for c in recorder.calls}
    assert ran >= {"RuleMembershipFunction", "RebuildFunction"}, ran
    assert any(c.function == "RuleMembershipFunction" and c.action == "sqs:SendMessage" for c in recorder.calls)
    assert any(c.function == "RebuildFunction" and c.action == "sqs:SendMessage" for c in recorder.calls)
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("RuleMembershipFunction", "RebuildFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_a_bulk_delete_is_allowed_by_the_functions_policy(
    recorder: Recorder, bulk: Bulk, api: Api
) -> None:
    """BulkDeleteFunction (chunks, a redelivered chunk, a stray copy) and RuleMembershipFunction on the
    person-record REMOVEs it causes (a dynamic and a hybrid member leave)."""
    org = make_org("org-a", "org-a")
    gold = [{"field": "tier", "operator": "equals", "value": "gold"}]
    pids = [f"p-b{i}" for i in range(5)]
    for pid in pids:
        people.put(org.org_id, pid, {"tier": "gold"})
    static = sheep_segment(api, org, "Static", segment_type="static")
    assert (
        api.post("/v2/segments/members/add", key=org.key, body={"segment_id": static, "minerva_pids": pids}).status
        == 200
    )
    dynamic = sheep_segment(api, org, "Gold", rules=gold)
    sheep_segment(api, org, "Hybrid", segment_type="hybrid", rules=gold, include=["p-b0"])
    bulk.rig.settle()
    path = f"/segments/v2/{org.bucket}/segment/{uuid.UUID(static).hex}/action/delete"
    real_send = queues.send

    def refuse(*a: Any, **k: Any) -> None:
        raise errors.Retryable("The queue refused the message")

    queues.send = refuse  # type: ignore[assignment]  # the route records the job stopped (UpdateItem)
    try:
        assert api.post(path, bearer=org.key).status == 503
    finally:
        queues.send = real_send  # type: ignore[assignment]
    started = api.post(path, bearer=org.key, query={"batch_size": 2})
    assert started.status == 200, started.text
    first = bulk.messages()[0]
    assert failures(functions().invoke("BulkDeleteFunction", sqs_batch([sqs_record(first)]))) == []
    again = sqs_batch([sqs_record(first, receive_count=2)])
    assert failures(functions().invoke("BulkDeleteFunction", again)) == []  # recorded: sends the next again
    for _ in range(20):
        bodies = bulk.messages()
        if not bodies:
            break
        for body in bodies:
            assert failures(functions().invoke("BulkDeleteFunction", sqs_batch([sqs_record(body)]))) == []
    records = bulk.rig.stream()
    assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
    assert members_of(api, org, dynamic) == []
    ran = {c.function for c in recorder.calls}
    assert ran >= {"BulkDeleteFunction", "RuleMembershipFunction"}, ran
    assert any(c.function == "BulkDeleteFunction" and c.action == "dynamodb:BatchWriteItem" for c in recorder.calls)
    assert any(c.function == "SheepActionsFunction" and c.action == "dynamodb:UpdateItem" for c in recorder.calls)
    assert any(c.function == "RuleMembershipFunction" and c.resource.endswith("/index/gsi3") for c in recorder.calls)
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("BulkDeleteFunction", "RuleMembershipFunction", "SheepActionsFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_an_export_is_allowed_by_the_functions_policy(
    recorder: Recorder, exports: Exports, api: Api
) -> None:
    """ExportFunction: a CSV in several parts (a redelivered chunk, a stray copy), an XLSX and a PDF, a
    job failed (its upload aborted); the publisher on the finished jobs."""
    org = make_org("org-a", "org-a")
    segment = api.post("/v2/segments/create", key=org.key, body={"name": "Out"}).json["segment_id"]
    pids = [f"p-e{i:03d}" for i in range(30)]
    assert (
        api.post("/v2/segments/members/add", key=org.key, body={"segment_id": segment, "minerva_pids": pids}).status
        == 200
    )
    for pid in pids:
        people.put(org.org_id, pid, {"first_name": "Ada"})
    started = []
    for fmt in ("csv", "xlsx"):
        body = {"segment_id": segment, "format": fmt, "fields": ["first_name"]}
        started.append(api.post("/v2/segments/exports", key=org.key, body=body).json["export_id"])
    uid = uuid.UUID(segment).hex
    assert api.get(f"/segments/v2/{org.bucket}/segment/{uid}/all/pdf", bearer=org.key).status == 200
    first = exports.messages()
    for body in first:
        assert failures(functions().invoke("ExportFunction", sqs_batch([sqs_record(body)]))) == []
        again = sqs_batch([sqs_record(body, receive_count=2)])
        assert failures(functions().invoke("ExportFunction", again)) == []  # recorded: sends the next again
    exports.run_jobs()
    assert api.get(f"/v2/segments/exports/{started[0]}", key=org.key).json["url"]  # presigned by the API function
    pdf = api.get(f"/segments/v2/{org.bucket}/segment/{uid}/all/pdf", bearer=org.key).json["journal_uri"].split("/")[3]
    exports.run_jobs()
    assert api.get(f"/segments/v2/{org.bucket}/journal/{pdf}", bearer=org.key).json["url"]
    doomed = api.post("/v2/segments/exports", key=org.key, body={"segment_id": segment, "format": "csv"}).json
    assert exports.chunk(exports.messages()[0]) == []  # its first part is uploaded
    assert api.delete(f"/v2/segments/{segment}", key=org.key).status == 200
    exports.run_jobs()  # the segment is gone: the job fails and its upload is aborted
    assert api.get(f"/v2/segments/exports/{doomed['export_id']}", key=org.key).json["status"] == "failed"
    assert failures(functions().invoke("PublisherFunction", {"Records": exports.signals.stream_batch()})) == []
    assert {(c.function, c.action) for c in recorder.calls} >= {
        ("ExportsApiFunction", "s3:GetObject"),  # a presigned URL needs the right of the call it stands for
        ("SheepExportsFunction", "s3:GetObject"),
    }
    actions = {c.action for c in recorder.calls if c.function == "ExportFunction"}
    assert actions >= {"s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload", "sqs:SendMessage"}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("ExportFunction", "ExportsApiFunction", "SheepExportsFunction", "PublisherFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_a_mailchimp_sync_is_allowed_by_the_functions_policy(
    recorder: Recorder, mailchimp: Sync, api: Api
) -> None:
    """MailchimpSyncFunction on a membership change (schedules), the sync it schedules (the secret,
    the ledger, memberships, person records, the state), and a full sync queued by the route."""
    org = make_org("org-a", "org-a")
    set_credentials(org.org_id, "aud-a")
    people.put(org.org_id, "p-1", {"email": "p1@example.org"})
    fieldset = api.post(f"/segments/v2/{org.bucket}/fieldset", bearer=org.key, body={"fields": ["first_name"]})
    assert fieldset.status == 201, fieldset.text
    body = {"name": "Synced", "mailchimp_sync": True, "fieldset_id": fieldset.json["uid"]}  # read by the sync
    made = api.post("/v2/segments/create", key=org.key, body=body)
    segment_id = made.json["segment_id"]
    add(api, org.key, segment_id, "p-1", "p-2")
    assert (
        failures(
            functions().invoke(
                "MailchimpSyncFunction", sqs_batch([sqs_record(membership_event(org.org_id, segment_id))])
            )
        )
        == []
    )
    path = f"/segments/v2/{org.bucket}/segment/{uuid.UUID(segment_id).hex}/all/sync_mailchimp"
    assert api.get(path, bearer=org.key).status == 200
    bodies = mailchimp.messages()
    assert len(bodies) == 2  # the scheduled sync, the full sync
    assert failures(functions().invoke("MailchimpSyncFunction", sqs_batch([sqs_record(b) for b in bodies]))) == []
    assert mailchimp.server.segment_members("aud-a", "Synced") == {"p1@example.org"}
    mine = [c for c in recorder.calls if c.function in ("MailchimpSyncFunction", "SheepActionsFunction")]
    assert {c.action for c in mine if c.function == "MailchimpSyncFunction"} >= {
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    }
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in mine
        if not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_the_stream_dispatcher_is_allowed_by_its_policy(
    recorder: Recorder, signals: Signals, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StreamDispatcherFunction on the changes it really gets (ledger and feed INSERTs, a restore):
    SendMessageBatch to the publisher's and the signal feed's FIFO queues, and nothing else."""
    org = make_org("org-a", "org-a")
    monkeypatch.setenv("PUBLISHER_QUEUE_URL", signals.bus.queues["PublisherQueue"])
    monkeypatch.setenv("SIGNAL_FEED_QUEUE_URL", signals.bus.queues["SignalFeedQueue"])
    aws.reset()
    segment_id = create_segment(api, org.key, "Dispatched")
    add(api, org.key, segment_id, "p-a1b2c3d4e5f6")
    assert (
        failures(
            functions().invoke(
                "SignalsIngestFunction", sqs_batch([sqs_record(person_event("death", "p-a1b2c3d4e5f6"))])
            )
        )
        == []
    )
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    assert (
        api.post(f"/segments/v2/{org.bucket}/segment/{segment_id.replace('-', '')}/restore", bearer=org.key).status
        == 200
    )
    assert failures(functions().invoke("StreamDispatcherFunction", {"Records": signals.stream_batch()})) == []
    sent = {c.resource for c in recorder.calls if c.function == "StreamDispatcherFunction"}
    assert {r.rsplit(":", 1)[-1] for r in sent} == {"PublisherQueue.fifo", "SignalFeedQueue.fifo"}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function == "StreamDispatcherFunction"
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)
