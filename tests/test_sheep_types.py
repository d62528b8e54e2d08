"""Segment types (API.md §3.2) on both surfaces: the fields each type uses, who may write members
of which type, and the membership definition's version and build state."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.assertions import assert_error, assert_sheep_error
from helpers.members import add, remove
from helpers.raw_table import raw, raw_segment, raw_size, segment_key

from conftest import Api, ApiResponse, Org
from segments import errors
from segments.models import Actor
from segments.store import segments as segment_store
from segments.usecases import members as members_usecase
from segments.usecases import segments as usecase

RULE = {"field": "tier", "operator": "equals", "value": "gold"}


def base(org: Org) -> str:
    return f"/segments/v2/{org.bucket}"


def person(org: Org, pid: str) -> str:
    return f"/{org.bucket}/person/{pid}/"


def create_resp(api: Api, org: Org, name: str, **fields: Any) -> ApiResponse:
    return api.post(f"{base(org)}/create", bearer=org.key, body={"name": name, "resource_type": "person", **fields})


def create(api: Api, org: Org, name: str, **fields: Any) -> dict[str, Any]:
    resp = create_resp(api, org, name, **fields)
    assert resp.status == 201, resp.text
    created: dict[str, Any] = resp.json
    return created


def put(api: Api, org: Org, seg: dict[str, Any], body: Any) -> ApiResponse:
    return api.request("PUT", f"{base(org)}/segment/{seg['uid']}", bearer=org.key, body=body)


def sid(seg: dict[str, Any]) -> str:
    return str(uuid.UUID(seg["uid"]))


def version_and_state(seg: dict[str, Any]) -> tuple[int, str]:
    return seg["definition_version"], seg["build_state"]


# ------------------------------------------------------------------ the fields each type uses


@pytest.mark.parametrize(
    ("segment_type", "fields", "field"),
    [
        ("static", {"rules": [RULE]}, "'rules'"),
        ("static", {"uris_exclude": ["/org-a/person/p-1/"]}, "'uris_exclude'"),
        ("dynamic", {"uris_include": ["/org-a/person/p-1/"]}, "'uris_include'"),
        ("dynamic", {"uris_exclude": ["/org-a/person/p-1/"]}, "'uris_exclude'"),
        ("auxiliary", {"rules": [RULE]}, "'rules'"),
        ("auxiliary", {"uris_include": ["/org-a/person/p-1/"]}, "'uris_include'"),
    ],
)
def test_a_type_refuses_the_fields_it_does_not_use(
    api: Api, org: Org, segment_type: str, fields: dict[str, Any], field: str
) -> None:
    body = assert_sheep_error(create_resp(api, org, "x", segment_type=segment_type, **fields), 400, "validation_error")
    assert field in body["description"] and segment_type in body["description"]


def test_hybrid_uses_rules_and_both_uri_lists(api: Api, org: Org) -> None:
    seg = create(
        api,
        org,
        "Hybrid",
        segment_type="hybrid",
        rules=[RULE],
        uris_include=[person(org, "p-1")],
        uris_exclude=[person(org, "p-2")],
    )
    assert (seg["rules"], seg["uris_include"], seg["uris_exclude"]) == (
        [RULE],
        [person(org, "p-1")],
        [person(org, "p-2")],
    )


def test_a_type_change_must_fit_the_fields_the_segment_has(api: Api, org: Org) -> None:
    seg = create(api, org, "Hybrid", segment_type="hybrid", rules=[RULE], uris_include=[person(org, "p-1")])
    assert (
        "'uris_include'"
        in assert_sheep_error(put(api, org, seg, {"segment_type": "dynamic"}), 400, "validation_error")["description"]
    )
    moved = put(api, org, seg, {"segment_type": "dynamic", "uris_include": []})
    assert moved.status == 200, moved.text
    assert (moved.json["segment_type"], moved.json["uris_include"]) == ("dynamic", [])


# ------------------------------------------------------------------ members by hand


@pytest.mark.parametrize(
    ("segment_type", "fields", "words"),
    [
        ("dynamic", {"rules": [RULE]}, "is dynamic: its members come from its rules"),
        ("hybrid", {"rules": [RULE]}, "uris_include"),
        ("auxiliary", {}, "is auxiliary"),
    ],
)
def test_members_of_rule_and_auxiliary_segments_cannot_be_changed_by_hand(
    api: Api, org: Org, segment_type: str, fields: dict[str, Any], words: str
) -> None:
    seg = create(api, org, segment_type, segment_type=segment_type, **fields)
    for write in (add, remove):
        body = assert_error(write(api, org, sid(seg), ["p-1"]), 422)
        assert words in body["error"] and sid(seg) in body["error"]
    stored = raw_segment(org.org_id, sid(seg))
    assert stored["current_size"] == 0 and "lease_owner" not in stored and stored["members_written"] is False


def test_static_members_are_added_by_hand(api: Api, org: Org) -> None:
    seg = create(api, org, "Static", segment_type="static")
    assert add(api, org, sid(seg), ["p-1", "p-2"]).json["results"]["n_added"] == 2
    assert remove(api, org, sid(seg), ["p-1"]).json["results"]["n_deleted"] == 1
    assert raw_size(org.org_id, sid(seg)) == 1


def test_the_rules_engine_writes_dynamic_members_but_never_auxiliary_ones(api: Api, org: Org) -> None:
    dynamic = create(api, org, "Dynamic", rules=[RULE])
    auxiliary = create(api, org, "Aux", segment_type="auxiliary")
    engine = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_rule", reason="rule")
    assert members_usecase.add_members(engine, sid(dynamic), ["p-1", "p-2"]).new_current_size == 2
    assert members_usecase.remove_members(engine, sid(dynamic), ["p-1"]).new_current_size == 1
    with pytest.raises(errors.ValidationFailed, match="is auxiliary"):
        members_usecase.add_members(engine, sid(auxiliary), ["p-1"])
    admin = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_admin", reason="admin")
    with pytest.raises(errors.ValidationFailed, match="is dynamic"):
        members_usecase.add_members(admin, sid(dynamic), ["p-3"])


def test_minerva_reads_work_on_every_type(api: Api, org: Org) -> None:
    engine = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_rule", reason="rule")
    for segment_type, fields in (
        ("static", {}),
        ("dynamic", {"rules": [RULE]}),
        ("hybrid", {"rules": [RULE]}),
        ("auxiliary", {}),
    ):
        seg = create(api, org, segment_type, segment_type=segment_type, **fields)
        if segment_type != "auxiliary":
            members_usecase.add_members(engine, sid(seg), ["p-1"])
        k = org.key
        got = api.get(f"/v2/segments/{sid(seg)}", key=k)
        assert got.status == 200 and got.json["segment_type"] == segment_type
        members = api.get("/v2/segments/members", key=k, query={"segment_id": sid(seg)})
        assert members.status == 200
        assert members.json["results"]["total_count"] == (0 if segment_type == "auxiliary" else 1)
        assert api.get(f"/v2/segments/{sid(seg)}/history", key=k).status == 200
        assert api.get("/v2/segments/signals/deaths", key=k, query={"segment_id": sid(seg)}).status == 200
        assert api.get(f"{base(org)}/segment/{seg['uid']}/count", bearer=k).status == 200


def test_a_segment_with_members_cannot_become_auxiliary(api: Api, org: Org) -> None:
    seg = create(api, org, "Static", segment_type="static")
    assert add(api, org, sid(seg), ["p-1"]).status == 200
    body = assert_sheep_error(put(api, org, seg, {"segment_type": "auxiliary"}), 409, "conflict")
    assert "members" in body["description"]
    assert remove(api, org, sid(seg), ["p-1"]).status == 200
    changed = put(api, org, seg, {"segment_type": "auxiliary"})
    assert changed.status == 200 and changed.json["segment_type"] == "auxiliary"
    assert_error(add(api, org, sid(seg), ["p-1"]), 422)


def test_becoming_auxiliary_waits_for_a_live_member_writer(aws: None, org: Org) -> None:
    """The emptiness condition is in the write: a member writer holding the lease makes it fail."""
    who = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_x")
    from segments.models import NewSegment

    seg = usecase.create_segment(who, NewSegment(name="Busy"))
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, seg.segment_id),
        UpdateExpression="SET lease_owner = :o, lease_until = :u",
        ExpressionAttributeValues={":o": {"S": "writer"}, ":u": {"N": str(10**14)}},
    )
    with pytest.raises(errors.Retryable):
        usecase.update_segment(who, seg.segment_id, {"segment_type": "auxiliary"})
    assert raw_segment(org.org_id, seg.segment_id)["segment_type"] == "static"


# ------------------------------------------------------------------ definition versions and build states


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"segment_type": "static"}, "ready"),
        ({"segment_type": "static", "uris_include": ["/org-a/person/p-1/"]}, "building"),
        ({"segment_type": "dynamic", "rules": [RULE]}, "building"),
        ({"segment_type": "dynamic"}, "building"),
        ({"segment_type": "hybrid", "uris_include": ["/org-a/person/p-1/"]}, "building"),
        ({"segment_type": "auxiliary"}, "ready"),
    ],
)
def test_create_starts_at_version_1(api: Api, org: Org, fields: dict[str, Any], state: str) -> None:
    seg = create(api, org, "Versioned", **fields)
    assert version_and_state(seg) == (1, state)
    stored = raw_segment(org.org_id, sid(seg))
    assert (stored["definition_version"], stored["build_state"]) == (1, state)
    assert "build_progress" not in stored and "build_progress" not in seg


def test_minerva_segments_are_static_and_ready(api: Api, org: Org) -> None:
    created = api.post("/v2/segments/create", key=org.key, body={"name": "Minerva"}).json
    got = api.get(f"/v2/segments/{created['segment_id']}", key=org.key).json
    assert (got["definition_version"], got["build_state"]) == (1, "ready")


def test_a_definition_change_bumps_the_version_in_the_same_write(api: Api, org: Org) -> None:
    seg = create(api, org, "Defined", segment_type="static")
    steps: list[tuple[dict[str, Any], tuple[int, str]]] = [
        ({"tags": ["t"], "name": "Defined 2", "description": "d"}, (1, "ready")),  # not the definition
        ({"uris_include": [person(org, "p-1")]}, (2, "building")),
        ({"uris_include": [person(org, "p-1")]}, (2, "building")),  # the same again: no change
        ({"uris_include": []}, (3, "building")),  # members from uris_include must go
        ({"segment_type": "auxiliary"}, (4, "ready")),
        ({"segment_type": "dynamic", "rules": [RULE]}, (5, "building")),
        ({"rules": [{**RULE, "value": "silver"}]}, (6, "building")),
        ({"rules": [{**RULE, "value": "silver"}], "active": False}, (6, "building")),
    ]
    for body, expected in steps:
        resp = put(api, org, seg, body)
        assert resp.status == 200, (body, resp.text)
        assert version_and_state(resp.json) == expected, body
        stored = raw_segment(org.org_id, sid(seg))
        assert (stored["definition_version"], stored["build_state"]) == expected
        got = api.get(f"/v2/segments/{sid(seg)}", key=org.key).json
        assert (got["definition_version"], got["build_state"]) == expected


def test_a_new_definition_drops_the_last_builds_progress(api: Api, org: Org) -> None:
    seg = create(api, org, "Progress", rules=[RULE])
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, sid(seg)),
        UpdateExpression="SET build_progress = :p",
        ExpressionAttributeValues={":p": {"M": {"done": {"N": "40"}, "total": {"N": "100"}}}},
    )
    shown = api.get(f"{base(org)}/find", bearer=org.key, query={"name": "progress"}).json["segments"][0]
    assert shown["build_progress"] == {"done": 40, "total": 100}
    assert api.get(f"/v2/segments/{sid(seg)}", key=org.key).json["build_progress"] == {"done": 40, "total": 100}
    # the engine finishes version 1 ...
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, sid(seg)),
        UpdateExpression="SET build_state = :r REMOVE build_progress",
        ExpressionAttributeValues={":r": {"S": "ready"}},
    )
    assert version_and_state(put(api, org, seg, {"tags": ["x"]}).json) == (1, "ready")
    # ... and a new definition is building again
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, sid(seg)),
        UpdateExpression="SET build_progress = :p",
        ExpressionAttributeValues={":p": {"M": {"done": {"N": "1"}}}},
    )
    changed = put(api, org, seg, {"rules": [RULE, {"field": "age", "operator": "greater_than", "value": 30}]}).json
    assert version_and_state(changed) == (2, "building") and "build_progress" not in changed
    assert "build_progress" not in raw_segment(org.org_id, sid(seg))


def test_a_concurrent_definition_change_makes_the_write_stale(aws: None, org: Org) -> None:
    who = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_x")
    from segments.models import NewSegment

    seg = usecase.create_segment(who, NewSegment(name="Raced", segment_type="dynamic", rules=[RULE]))
    record = segment_store.get_live(org.org_id, seg.segment_id)
    assert record is not None
    usecase.update_segment(who, seg.segment_id, {"rules": []})  # another writer: version 2
    with pytest.raises(segment_store.Stale):  # a write based on version 1
        segment_store.update(
            org.org_id,
            seg.segment_id,
            old_name_key=record["name_key"],
            sets={"definition_version": 2, "rules": [RULE, RULE]},
            version=1,
        )
    assert raw_segment(org.org_id, seg.segment_id)["rules"] == []


def test_records_from_before_versioning_read_as_version_1(api: Api, org: Org) -> None:
    seg = create(api, org, "Legacy", rules=[RULE])
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, sid(seg)),
        UpdateExpression="REMOVE definition_version, build_state",
    )
    assert version_and_state(api.get(f"/v2/segments/{sid(seg)}", key=org.key).json) == (1, "ready")
    assert version_and_state(put(api, org, seg, {"rules": []}).json) == (2, "building")
