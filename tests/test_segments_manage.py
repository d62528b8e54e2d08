"""Segment metadata (docs/api.md#minerva-segment-metadata): list, get, PATCH (names stay unique), soft DELETE."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers.assertions import REQ_ID, TIME_Z, assert_error
from helpers.members import add, new_segment, results

from conftest import Api, ApiResponse, Org
from segments import cursors
from segments.models import name_key
from segments.store import dynamo, keys
from segments.store import members as members_store
from segments.store import segments as segment_store
from segments.timefmt import iso, now

CREATE = "/v2/segments/create"
SEGMENTS = "/v2/segments"
INTERNALS = {"pk", "sk", "gsi1pk", "gsi1sk", "name_key", "lease_owner", "lease_until", "size_dirty", "members_written"}


def path(segment_id: str) -> str:
    return f"{SEGMENTS}/{segment_id}"


def get(api: Api, org: Org, segment_id: str) -> ApiResponse:
    return api.get(path(segment_id), key=org.key)


def patch(api: Api, org: Org, segment_id: str, body: Any, **kw: Any) -> ApiResponse:
    return api.patch(path(segment_id), key=org.key, body=body, **kw)


def create(api: Api, org: Org, name: str) -> ApiResponse:
    return api.post(CREATE, key=org.key, body={"name": name})


# ------------------------------------------------------------------ GET one


def test_get_returns_the_segment_with_its_exact_size(api: Api, org: Org) -> None:
    resp = api.post(CREATE, key=org.key, body={"name": "Leads", "description": "Q1"})
    sid = resp.json["segment_id"]
    results(add(api, org, sid, ["p-1", "p-2", "p-3"]))
    got = get(api, org, sid)
    assert got.status == 200
    body = got.json
    assert REQ_ID.match(body["api_request_id"]) and got.headers["x-api-request-id"] == body["api_request_id"]
    assert {k: body[k] for k in ("segment_id", "name", "description", "source", "segment_type", "current_size")} == {
        "segment_id": sid,
        "name": "Leads",
        "description": "Q1",
        "source": "api",
        "segment_type": "static",
        "current_size": 3,
    }
    assert TIME_Z.match(body["created_at"]) and TIME_Z.match(body["updated_at"])
    assert body["updated_at"] > body["created_at"]  # membership changed it
    assert not INTERNALS & set(body)


def test_get_of_unknown_foreign_deleted_or_malformed_ids_is_404(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org)
    assert_error(get(api, other_org, sid), 404, "Segment not found")
    assert_error(get(api, org, str(uuid.uuid4())), 404, "Segment not found")
    assert_error(get(api, org, "not-a-uuid"), 404, "Segment not found")
    assert api.delete(path(sid), key=org.key).status == 200
    assert_error(get(api, org, sid), 404, "Segment not found")


# ------------------------------------------------------------------ list


def test_list_is_newest_first_and_pages_by_cursor(api: Api, org: Org) -> None:
    ids = [new_segment(api, org, f"S{i}") for i in range(7)]
    first = results(api.get(SEGMENTS, key=org.key, query={"limit": 3}))
    assert [s["segment_id"] for s in first["items"]] == ids[::-1][:3]
    assert all(not INTERNALS & set(s) and "current_size" in s for s in first["items"])
    seen = [s["segment_id"] for s in first["items"]]
    page = first
    while page["next_cursor"]:
        page = results(api.get(SEGMENTS, key=org.key, query={"limit": 3, "cursor": page["next_cursor"]}))
        seen += [s["segment_id"] for s in page["items"]]
    assert seen == ids[::-1]
    everything = results(api.get(SEGMENTS, key=org.key))
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None


def test_list_leaves_out_deleted_segments_and_other_orgs(api: Api, org: Org, other_org: Org) -> None:
    keep, gone = new_segment(api, org, "keep"), new_segment(api, org, "gone")
    new_segment(api, other_org, "theirs")
    assert api.delete(path(gone), key=org.key).status == 200
    for limit in (1, 50):
        items = results(api.get(SEGMENTS, key=org.key, query={"limit": limit}))["items"]
        assert [s["segment_id"] for s in items] == [keep]


def test_list_default_limit_is_50(api: Api, org: Org) -> None:
    for i in range(51):
        segment_store.put_with_name(
            {
                "segment_id": str(uuid.uuid4()),
                "org_id": org.org_id,
                "bucket": org.bucket,
                "name": f"n{i}",
                "current_size": 0,
                "created_at": iso(now()),
                "updated_at": iso(now()),
                "record_state": "active",
                "source": "api",
                "segment_type": "static",
            },
            f"n{i}",
        )
    page = results(api.get(SEGMENTS, key=org.key))
    assert len(page["items"]) == 50 and page["next_cursor"]
    assert len(results(api.get(SEGMENTS, key=org.key, query={"cursor": page["next_cursor"]}))["items"]) == 1


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "junk"}])
def test_list_rejects_bad_parameters(api: Api, org: Org, query: dict[str, Any]) -> None:
    assert_error(api.get(SEGMENTS, key=org.key, query=query), 422)


def test_forged_list_cursors_are_422(api: Api, org: Org) -> None:
    new_segment(api, org, "a")
    for position in ("x#y", "2024-01-01T00:00:00.000000Z#not-a-uuid", ["2024"], None, 5):
        cursor = cursors.encode("segments", org.org_id, position)
        assert_error(api.get(SEGMENTS, key=org.key, query={"cursor": cursor}), 422, "Invalid cursor")


def test_a_cursor_of_another_org_is_refused(api: Api, org: Org, other_org: Org) -> None:
    for i in range(3):
        new_segment(api, org, f"a{i}")
    cursor = results(api.get(SEGMENTS, key=org.key, query={"limit": 1}))["next_cursor"]
    assert_error(api.get(SEGMENTS, key=other_org.key, query={"cursor": cursor}), 422, "Invalid cursor")


# ------------------------------------------------------------------ PATCH


def test_rename_frees_the_old_name_and_takes_the_new_one(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Old name")
    resp = patch(api, org, sid, {"name": "  New name  "})
    assert resp.status == 200, resp.text
    body = resp.json
    assert body["segment_id"] == sid and body["name"] == "New name" and TIME_Z.match(body["request_completed_at"])
    assert body["updated_at"] > body["created_at"] and not INTERNALS & set(body)
    assert get(api, org, sid).json["name"] == "New name"
    assert_error(create(api, org, "new NAME"), 404, "Segment name new NAME already exists")
    assert create(api, org, "Old name").status == 200


def test_rename_to_a_taken_name_answers_like_create(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Mine")
    new_segment(api, org, "Taken")
    assert_error(patch(api, org, sid, {"name": "TAKEN"}), 404, "Segment name TAKEN already exists")
    assert get(api, org, sid).json["name"] == "Mine"
    assert_error(create(api, org, "mine"), 404)  # its own name is still held


def test_case_only_rename_of_the_same_segment_works(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "leads")
    assert patch(api, org, sid, {"name": "LEADS"}).json["name"] == "LEADS"
    assert_error(create(api, org, "Leads"), 404)
    assert patch(api, org, sid, {"name": "LEADS"}).status == 200  # the same name again


def test_name_in_another_org_does_not_block_a_rename(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org, "A")
    new_segment(api, other_org, "B")
    assert patch(api, org, sid, {"name": "B"}).status == 200


def test_description_can_be_changed_and_cleared(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "D")
    assert patch(api, org, sid, {"description": "about"}).json["description"] == "about"
    cleared = patch(api, org, sid, {"description": None}).json
    assert cleared.get("description") is None and cleared["name"] == "D"
    both = patch(api, org, sid, {"name": "E", "description": "x"}).json
    assert (both["name"], both["description"]) == ("E", "x")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": 5},
        {"description": 5},
        {"description": "x" * 4097},
        "nope",
        [1],
    ],
)
def test_bad_patch_bodies_are_422(api: Api, org: Org, body: Any) -> None:
    sid = new_segment(api, org, "Same")
    assert_error(patch(api, org, sid, body), 422)
    assert get(api, org, sid).json["name"] == "Same"


def test_an_empty_patch_names_every_field_it_could_change(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Same")
    assert_error(
        patch(api, org, sid, {}),
        422,
        "Nothing to update: give at least one of 'name', 'description', 'mailchimp_sync', 'fieldset_id'",
    )


def test_patch_of_unknown_foreign_or_deleted_segment_is_404(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org, "P")
    assert_error(patch(api, other_org, sid, {"name": "Q"}), 404, "Segment not found")
    assert_error(patch(api, org, str(uuid.uuid4()), {"name": "Q"}), 404, "Segment not found")
    assert api.delete(path(sid), key=org.key).status == 200
    assert_error(patch(api, org, sid, {"name": "Q"}), 404, "Segment not found")
    assert create(api, org, "Q").status == 200  # no lock was left behind


def test_patch_with_an_idempotency_key_replays(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "R")
    headers = {"Idempotency-Key": "rename-1"}
    first = patch(api, org, sid, {"name": "S"}, headers=headers)
    assert first.status == 200
    assert patch(api, org, sid, {"name": "T"}).status == 200
    assert patch(api, org, sid, {"name": "S"}, headers=headers).json == first.json
    assert get(api, org, sid).json["name"] == "T"  # the replay applied nothing
    assert_error(patch(api, org, sid, {"name": "U"}, headers=headers), 422)


def test_two_segments_renamed_to_one_name_at_once_one_wins(api: Api, org: Org) -> None:
    ids = [new_segment(api, org, f"c{i}") for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        out = list(pool.map(lambda sid: patch(api, org, sid, {"name": "Winner"}), ids))
    assert sorted(r.status for r in out) == [200] + [404] * 5
    names = [get(api, org, sid).json["name"] for sid in ids]
    assert names.count("Winner") == 1
    freed = [f"c{i}" for i, sid in enumerate(ids) if get(api, org, sid).json["name"] == "Winner"]
    assert create(api, org, freed[0]).status == 200  # the winner's old name is free


# ------------------------------------------------------------------ DELETE


def test_delete_is_soft_frees_the_name_and_hides_members(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Gone soon")
    results(add(api, org, sid, ["p-1"]))
    resp = api.delete(path(sid), key=org.key)
    assert resp.status == 200
    body = resp.json
    assert body["segment_id"] == sid and body["record_state"] == "deleted" and TIME_Z.match(body["deleted_at"])
    assert REQ_ID.match(body["api_request_id"])
    stored = dynamo.from_item(
        dynamo.call("get_item", TableName=dynamo.table(), Key=keys.segment_key(org.org_id, sid))["Item"]
    )
    assert stored["record_state"] == "deleted" and stored["deleted_at"] == body["deleted_at"]
    assert members_store.get_many(sid, ["p-1"])["p-1"]["active"] is True  # kept, just not served
    assert_error(api.get("/v2/segments/members", key=org.key, query={"segment_id": sid}), 404)
    assert_error(api.get(f"{path(sid)}/history", key=org.key), 404)
    assert results(api.get("/v2/segments/memberships", key=org.key, query={"minerva_pid": "p-1"}))["items"] == []
    assert create(api, org, "gone SOON").status == 200
    assert_error(api.delete(path(sid), key=org.key), 404, "Segment not found")


def test_delete_of_foreign_or_unknown_segment_is_404(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org, "Stay")
    assert_error(api.delete(path(sid), key=other_org.key), 404, "Segment not found")
    assert_error(api.delete(path(str(uuid.uuid4())), key=org.key), 404, "Segment not found")
    assert get(api, org, sid).status == 200


def test_delete_with_an_idempotency_key_replays(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Twice")
    headers = {"Idempotency-Key": "del-1"}
    first = api.delete(path(sid), key=org.key, headers=headers)
    assert first.status == 200
    assert api.delete(path(sid), key=org.key, headers=headers).json == first.json
    assert api.delete(path(sid), key=org.key).status == 404


def test_system_segments_cannot_be_changed_or_deleted(api: Api, org: Org) -> None:
    sid = str(uuid.uuid4())
    segment_store.put_with_name(
        {
            "segment_id": sid,
            "org_id": org.org_id,
            "bucket": org.bucket,
            "name": "All people",
            "current_size": 0,
            "created_at": iso(now()),
            "updated_at": iso(now()),
            "record_state": "active",
            "source": "system",
            "segment_type": "dynamic",
            "system_segment": True,
        },
        name_key("All people"),
    )
    assert_error(patch(api, org, sid, {"name": "Some people"}), 403, "System segments can't be edited or deleted")
    assert_error(api.delete(path(sid), key=org.key), 403)
    assert get(api, org, sid).json["name"] == "All people"
