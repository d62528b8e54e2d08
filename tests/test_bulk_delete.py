"""SheepCRM `action/delete`: an asynchronous bulk delete of a segment's person records, through the
gateway and BulkDeleteQueue/BulkDeleteFunction; the deleted records leave the org's rule segments
through the table's stream (RuleMembershipFunction, ledger reason `rule`); nothing of another org
is touched; chunks survive a crash; hostile parameters are refused in the vendor's error shape."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from helpers.bulk import Bulk, bulk_fixture  # noqa: F401 - the `bulk` fixture
from helpers.rules import Rig, members_of, rig_fixture, sheep_segment  # noqa: F401 - the `rig` fixture
from helpers.signals import REGION, signals_fixture  # noqa: F401 - the `signals` fixture
from helpers.vendor_schema import validate_vendor, validate_vendor_error

from conftest import Api, Org
from segments.store import keys, people

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
PIDS = [f"p-d{i:02d}" for i in range(12)]  # even: gold, odd: silver
DOOMED = PIDS[:8]
DELETE = "/segments/v2/{bucket}/segment/{uid}/action/delete"


def seed(org: Org) -> None:
    for i, pid in enumerate(PIDS):
        people.put(org.org_id, pid, {"tier": "gold" if i % 2 == 0 else "silver", "first_name": f"N{i}"})


def uid_of(segment_id: str) -> str:
    return uuid.UUID(segment_id).hex


def record_pids(org: Org) -> list[str]:
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName="SegmentsTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.people_pk(org.org_id)}},
    )["Items"]
    return sorted(keys.pid_of(i["sk"]["S"]) for i in items)


def history(api: Api, org: Org, segment_id: str) -> list[tuple[str, str, str]]:
    resp = api.get(f"/v2/segments/{segment_id}/history", key=org.key, query={"limit": 1000})
    assert resp.status == 200, resp.text
    return [(e["minerva_pid"], e["change"], e["reason"]) for e in resp.json["results"]["items"]]


def start(api: Api, org: Org, segment_id: str, **params: Any) -> Any:
    path = DELETE.format(bucket=org.bucket, uid=uid_of(segment_id))
    body = params.pop("body", None)
    return api.post(path, bearer=org.key, query=params or None, body=body)


def notification(api: Api, org: Org, started: Any) -> dict[str, Any]:
    uri = started.json["notification_uri"]
    resp = api.get(f"/segments/v2{uri}".rstrip("/"), bearer=org.key)
    assert resp.status == 200, resp.text
    return dict(resp.json)


def static_segment(api: Api, org: Org, name: str, pids: list[str]) -> str:
    segment_id = sheep_segment(api, org, name, segment_type="static")
    resp = api.post("/v2/segments/members/add", key=org.key, body={"segment_id": segment_id, "minerva_pids": pids})
    assert resp.status == 200, resp.text
    return segment_id


@pytest.fixture
def world(api: Api, org: Org, other_org: Org, bulk: Bulk) -> dict[str, str]:
    """Both orgs hold the same PIDs' records and a Gold segment; org-a has the Doomed static segment
    (8 members with records, one without), a hybrid including a silver member, and a static Keep."""
    seed(org)
    seed(other_org)
    made = {
        "doomed": static_segment(api, org, "Doomed", [*DOOMED, "p-norec"]),
        "keep": static_segment(api, org, "Keep", ["p-d00"]),
        "gold": sheep_segment(api, org, "Gold", rules=GOLD),
        "hybrid": sheep_segment(api, org, "Hybrid", segment_type="hybrid", rules=GOLD, include=["p-d01"]),
        "their_gold": sheep_segment(api, other_org, "Gold", rules=GOLD),
    }
    bulk.rig.settle()
    assert members_of(api, org, made["gold"]) == PIDS[0::2]
    assert members_of(api, org, made["hybrid"]) == sorted([*PIDS[0::2], "p-d01"])
    return made


def test_delete_removes_the_members_records_and_they_leave_every_rule_segment(
    api: Api, org: Org, other_org: Org, bulk: Bulk, world: dict[str, str]
) -> None:
    started = start(api, org, world["doomed"], batch_size=3)
    assert started.status == 200, started.text
    validate_vendor("POST", DELETE, 200, started.json)
    job_uid = started.json["notification_uri"].split("/")[3]
    assert started.json["notification_uri"] == f"/{org.bucket}/notification/{job_uid}/"
    assert started.json["lambda_params"] == {
        "uri": f"/{org.bucket}/segment/{uid_of(world['doomed'])}/",
        "rules": {},
        "safe_mode": True,
        "batch_size": 3,
        "verbose": False,
    }
    assert notification(api, org, started)["status"] == "queued"

    assert bulk.run_jobs() >= 3  # 9 members, 3 a chunk
    note = notification(api, org, started)
    assert note["status"] == "done" and note["message"] is None
    progress = note["progress"]
    assert (progress["members_read"], progress["deleted"], progress["not_found"], progress["filtered_out"]) == (
        9,
        8,
        1,
        0,
    )
    assert record_pids(org) == PIDS[8:]
    assert record_pids(other_org) == PIDS  # nothing of another org is touched

    bulk.rig.settle()  # the REMOVEs reach RuleMembershipFunction
    assert members_of(api, org, world["gold"]) == ["p-d08", "p-d10"]
    assert members_of(api, org, world["hybrid"]) == ["p-d01", "p-d08", "p-d10"]  # its uris_include keeps p-d01
    assert members_of(api, org, world["keep"]) == ["p-d00"]  # static: members by hand stay
    assert members_of(api, org, world["doomed"]) == sorted([*DOOMED, "p-norec"])
    removed = [h for h in history(api, org, world["gold"]) if h[1] == "removed"]
    assert sorted(removed) == [(p, "removed", "rule") for p in ["p-d00", "p-d02", "p-d04", "p-d06"]]
    assert members_of(api, other_org, world["their_gold"]) == PIDS[0::2]


def test_extra_rules_filter_what_is_deleted(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    started = start(api, org, world["doomed"], rules=json.dumps(GOLD), batch_size=100)
    assert started.status == 200, started.text
    assert started.json["lambda_params"]["rules"] == {"all": GOLD}
    bulk.run_jobs()
    assert record_pids(org) == sorted(set(PIDS) - {"p-d00", "p-d02", "p-d04", "p-d06"})
    progress = notification(api, org, started)["progress"]
    assert (progress["deleted"], progress["filtered_out"], progress["not_found"]) == (4, 4, 1)
    # a body works too, with a boolean tree
    tree = {"any": [{"field": "first_name", "operator": "equals", "value": "n1"}]}
    again = start(api, org, world["doomed"], body={"rules": tree, "batch_size": 2, "verbose": True})
    assert again.status == 200, again.text
    bulk.run_jobs()
    assert "p-d01" not in record_pids(org)
    note = notification(api, org, again)
    assert note["progress"]["deleted"] == 1 and note["recent"] and note["recent"][-1]["chunk"] >= 1


def test_members_who_join_after_the_request_are_left_alone(
    api: Api, org: Org, bulk: Bulk, world: dict[str, str]
) -> None:
    started = start(api, org, world["doomed"], batch_size=100)
    assert started.status == 200, started.text
    added = api.post(
        "/v2/segments/members/add", key=org.key, body={"segment_id": world["doomed"], "minerva_pids": ["p-d09"]}
    )
    assert added.status == 200
    bulk.run_jobs()
    assert "p-d09" in record_pids(org)
    assert notification(api, org, started)["progress"]["joined_after"] == 1


def test_safe_mode_refuses_a_segment_still_building(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    building = sheep_segment(api, org, "Building", rules=GOLD)  # its rebuild has not run: build_state building
    resp = start(api, org, building)
    assert resp.status == 409, resp.text
    validate_vendor_error(resp.json)
    assert resp.json["type"] == "conflict" and "safe_mode=false" in resp.json["description"]
    assert bulk.messages() == []
    unsafe = start(api, org, building, safe_mode="false")
    assert unsafe.status == 200, unsafe.text
    assert unsafe.json["lambda_params"]["safe_mode"] is False
    # a ready segment redefined while a safe job waits: the job stops, nothing is deleted
    safe = start(api, org, world["gold"])
    assert safe.status == 200, safe.text
    bulk.messages()  # drop both jobs' first messages: the rebuild below runs first
    resp = api.request(
        "PUT",
        f"/segments/v2/{org.bucket}/segment/{uid_of(world['gold'])}",
        bearer=org.key,
        body={"rules": [{"field": "tier", "operator": "equals", "value": "silver"}]},
    )
    assert resp.status == 200, resp.text
    job = safe.json["notification_uri"].split("/")[3]
    assert bulk.chunk({"org_id": org.org_id, "job_id": str(uuid.UUID(job)), "chunk": 0}) == []
    note = notification(api, org, safe)
    assert note["status"] == "stopped" and "definition changed" in note["message"]
    assert record_pids(org) == PIDS


def test_a_deleted_segment_stops_its_job(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    started = start(api, org, world["doomed"], batch_size=3)
    assert started.status == 200
    assert api.delete(f"/v2/segments/{world['doomed']}", key=org.key).status == 200
    bulk.run_jobs()
    note = notification(api, org, started)
    assert note["status"] == "stopped" and "deleted" in note["message"]
    assert record_pids(org) == PIDS


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"batch_size": 2501}, "Batch size must be at most 2500"),
        ({"batch_size": 10**30}, "Batch size must be at most 2500"),
        ({"batch_size": 0}, "Batch size must be at least 1"),
        ({"batch_size": -5}, "Batch size must be at least 1"),
        ({"batch_size": "lots"}, "batch_size"),
        ({"body": {"batch_size": 5000}}, "Batch size must be at most 2500"),
        ({"safe_mode": "perhaps"}, "safe_mode"),
        ({"safe_mode": "1"}, "safe_mode"),  # booleans are true or false, as on the rest of the surface
        ({"body": {"verbose": "yes"}}, "verbose"),
        ({"rules": "{not json"}, "rules"),
        ({"rules": json.dumps([{"field": "tier", "operator": "sounds_like", "value": "x"}])}, "rules.0.operator"),
        ({"body": {"rules": "DROP TABLE"}}, "rules"),
        ({"body": [1, 2]}, "JSON object"),
    ],
)
def test_hostile_parameters_are_400_and_queue_nothing(
    api: Api, org: Org, bulk: Bulk, world: dict[str, str], params: dict[str, Any], needle: str
) -> None:
    resp = start(api, org, world["doomed"], **params)
    assert resp.status == 400, resp.text
    validate_vendor("POST", DELETE, 400, resp.json)
    assert resp.json["type"] == "validation_error" and needle in resp.json["description"], resp.json
    assert bulk.messages() == []


def test_the_largest_batch_size_is_accepted(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    resp = start(api, org, world["doomed"], batch_size=2500)
    assert resp.status == 200, resp.text
    bulk.run_jobs()
    assert record_pids(org) == PIDS[8:]


def test_another_org_can_neither_act_on_the_segment_nor_read_the_job(
    api: Api, org: Org, other_org: Org, bulk: Bulk, world: dict[str, str]
) -> None:
    uid = uid_of(world["doomed"])
    resp = api.post(DELETE.format(bucket=org.bucket, uid=uid), bearer=other_org.key)
    assert resp.status == 403 and resp.json["type"] == "permission_denied"
    resp = api.post(DELETE.format(bucket=other_org.bucket, uid=uid), bearer=other_org.key)
    assert resp.status == 404 and resp.json["type"] == "not_found"
    validate_vendor_error(resp.json)
    for bad in ("zz", uuid.uuid4().hex):
        assert api.post(DELETE.format(bucket=org.bucket, uid=bad), bearer=org.key).status == 404
    assert bulk.messages() == []
    started = start(api, org, world["doomed"])
    job_uid = started.json["notification_uri"].split("/")[3]
    resp = api.get(f"/segments/v2/{other_org.bucket}/notification/{job_uid}", bearer=other_org.key)
    assert resp.status == 404 and resp.json["type"] == "not_found"
    # a message naming the job under another org finds no job and deletes nothing
    assert bulk.chunk({"org_id": other_org.org_id, "job_id": str(uuid.UUID(job_uid)), "chunk": 0}) == []
    assert record_pids(other_org) == PIDS


def test_an_idempotency_key_starts_one_job(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    path = DELETE.format(bucket=org.bucket, uid=uid_of(world["doomed"]))
    headers = {"Idempotency-Key": "once-only"}
    first = api.post(path, bearer=org.key, query={"batch_size": 4}, headers=headers)
    second = api.post(path, bearer=org.key, query={"batch_size": 4}, headers=headers)
    assert first.status == second.status == 200
    assert first.json["notification_uri"] == second.json["notification_uri"]
    assert len(bulk.messages()) == 1


@pytest.mark.parametrize("where", ["after the deletes", "after recording progress"])
def test_a_killed_chunk_is_redone_and_the_chain_never_forks(
    api: Api, org: Org, bulk: Bulk, world: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from segments import queues
    from segments.store import jobs

    started = start(api, org, world["doomed"], batch_size=3)
    assert started.status == 200
    first = bulk.messages()[0]
    real_advance, real_send = jobs.advance, queues.send

    def die_before_advance(*a: Any, **k: Any) -> bool:
        raise RuntimeError("killed after the deletes")

    def die_on_send(*a: Any, **k: Any) -> None:
        raise RuntimeError("killed after recording progress")

    if where == "after the deletes":
        monkeypatch.setattr(jobs, "advance", die_before_advance)
    else:
        monkeypatch.setattr(queues, "send", die_on_send)
    assert bulk.chunk(first) != []  # failed: SQS delivers it again
    monkeypatch.setattr(jobs, "advance", real_advance)
    monkeypatch.setattr(queues, "send", real_send)
    assert bulk.chunk(first, receive_count=2) == []
    assert bulk.chunk(first) == []  # a stray first-delivery copy of a recorded chunk is dropped
    assert len(bulk.messages()) == 1  # one chain: exactly one next message
    bulk.rig.signals.stream_batch()  # (the stream is not under test here)
    assert bulk.chunk({**first, "chunk": 1}) == []
    bulk.run_jobs()
    note = notification(api, org, started)
    assert note["status"] == "done"
    assert record_pids(org) == PIDS[8:]
    progress = note["progress"]
    assert progress["members_read"] == 9
    assert progress["deleted"] + progress["not_found"] == 9


def test_a_malformed_message_is_reported_for_the_dlq(bulk: Bulk) -> None:
    assert bulk.chunk("not json") != []
    assert bulk.chunk({"org_id": "org-a", "job_id": "nope", "chunk": 0}) != []


def test_a_person_record_deleted_directly_leaves_the_orgs_rule_segments(
    api: Api, org: Org, bulk: Bulk, world: dict[str, str]
) -> None:
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName="SegmentsTable", Key=keys.person_key(org.org_id, "p-d02")
    )
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName="SegmentsTable", Key=keys.person_key(org.org_id, "p-d01")
    )
    bulk.rig.settle()
    assert "p-d02" not in members_of(api, org, world["gold"])
    assert "p-d02" not in members_of(api, org, world["hybrid"])
    assert "p-d01" in members_of(api, org, world["hybrid"])  # included by uri: a hybrid keeps it
    assert ("p-d02", "removed", "rule") in history(api, org, world["gold"])


def jobs_stored(org: Org) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName="SegmentsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
        ExpressionAttributeValues={":pk": {"S": keys.org_pk(org.org_id)}, ":job": {"S": keys.JOB}},
    )["Items"]
    return [{"status": i["status"]["S"], "message": i.get("message", {}).get("S")} for i in items]


def test_a_queue_that_refuses_the_first_chunk_is_503_and_leaves_no_job_waiting(
    api: Api, org: Org, bulk: Bulk, world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segments import errors, queues

    def refuse(*a: Any, **k: Any) -> None:
        raise errors.Retryable("The queue refused the message")

    monkeypatch.setattr(queues, "send", refuse)
    resp = start(api, org, world["doomed"])
    assert resp.status == 503, resp.text
    assert resp.headers["Retry-After"] and resp.json["type"] == "internal_error"
    assert jobs_stored(org) == [{"status": "stopped", "message": "the job could not be queued; send it again"}]
    assert record_pids(org) == PIDS


def test_decimal_rule_values_are_echoed_as_numbers(api: Api, org: Org, bulk: Bulk, world: dict[str, str]) -> None:
    rules = [{"field": "score", "operator": "greater_than", "value": 1.5}]
    path = DELETE.format(bucket=org.bucket, uid=uid_of(world["doomed"]))
    for _ in range(2):  # the second answer is the replay of the first
        resp = api.post(path, bearer=org.key, body={"rules": rules}, headers={"Idempotency-Key": "decimal-rules"})
        assert resp.status == 200, resp.text
        assert resp.json["lambda_params"]["rules"] == {"all": rules}
    bulk.run_jobs()
    assert notification(api, org, resp)["lambda_params"]["rules"] == {"all": rules}
    assert record_pids(org) == PIDS  # nobody has a score: nothing matched
