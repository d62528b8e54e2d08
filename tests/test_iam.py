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

import uuid

import pytest
from helpers.bulk import Bulk, bulk_fixture, bulk_queue_fixture  # noqa: F401 - the `bulk`, `bulk_queue` fixtures
from helpers.exports import Exports, export_queue_fixture, exports_fixture  # noqa: F401 - `export_queue`, `exports`
from helpers.iam import (  # noqa: F401 - the `recorder` fixture
    Recorder,
    allowed,
    policy_statements,
    recorder_fixture,
    required,
    table_arn,
)
from helpers.mailchimp import Sync, mailchimp_fixture, membership_event, set_credentials  # noqa: F401 - `mailchimp`
from helpers.rules import Rig, members_of, rig_fixture, sheep_segment  # noqa: F401 - the `rig` fixture
from helpers.signals import (
    signals_fixture,  # noqa: F401 - the `signals` fixture
)
from helpers.webhooks import exercise_webhooks
from helpers.webhooks import rig_fixture as webhook_rig

from conftest import Api, Org, make_org, template
from segments.store import people
from tools import cfn


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
