"""The SheepCRM §3.3 endpoints: listings, find, trees, count, members, update, delete, restore; the
bucket check, system segments, foreign and malformed uids."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.assertions import SHEEP_TIME, assert_sheep_error
from helpers.members import add
from helpers.raw_table import raw_org_items, raw_segment

from conftest import Api, ApiResponse, Org
from segments import auth
from segments.models import Actor
from segments.usecases import segments as usecase


def base(org: Org) -> str:
    return f"/segments/v2/{org.bucket}"


def create(api: Api, org: Org, name: str, **fields: Any) -> dict[str, Any]:
    resp = api.post(f"{base(org)}/create", bearer=org.key, body={"name": name, "resource_type": "person", **fields})
    assert resp.status == 201, resp.text
    created: dict[str, Any] = resp.json
    return created


def seg_path(org: Org, seg: dict[str, Any]) -> str:
    return f"{base(org)}/segment/{seg['uid']}"


def put(api: Api, org: Org, seg: dict[str, Any], body: Any, **kw: Any) -> ApiResponse:
    return api.request("PUT", seg_path(org, seg), bearer=org.key, body=body, **kw)


def segment_id(seg: dict[str, Any]) -> str:
    return str(uuid.UUID(seg["uid"]))


def names(resp: ApiResponse) -> list[str]:
    assert resp.status == 200, resp.text
    return [s["name"] for s in resp.json["segments"]]


# ------------------------------------------------------------------ listings


def test_list_pages_active_segments_by_name(api: Api, org: Org) -> None:
    for name in ("delta", "Alpha", "charlie", "Bravo", "echo"):
        create(api, org, name, segment_type="static")
    create(api, org, "Dormant", segment_type="static", active=False)
    first = api.get(base(org), bearer=org.key, query={"page_size": 2})
    assert first.status == 200
    assert {k: first.json[k] for k in ("count", "page", "page_size", "next_page")} == {
        "count": 5,
        "page": 1,
        "page_size": 2,
        "next_page": 2,
    }
    assert names(first) == ["Alpha", "Bravo"]
    assert names(api.get(base(org), bearer=org.key, query={"page_size": 2, "page": 2})) == ["charlie", "delta"]
    last = api.get(base(org), bearer=org.key, query={"page_size": 2, "page": 3})
    assert names(last) == ["echo"] and last.json["next_page"] is None
    past = api.get(base(org), bearer=org.key, query={"page_size": 2, "page": 9})
    assert names(past) == [] and past.json["count"] == 5
    seg = first.json["segments"][0]
    assert SHEEP_TIME.match(seg["created"]) and seg["uri"] == f"/{org.bucket}/segment/{seg['uid']}/"
    assert seg["definition_version"] == 1 and seg["build_state"] == "ready"


def test_default_page_size_is_50_and_at_most_200(api: Api, org: Org) -> None:
    create(api, org, "One", segment_type="static")
    assert api.get(base(org), bearer=org.key).json["page_size"] == 50
    assert api.get(base(org), bearer=org.key, query={"page_size": 200}).status == 200
    for bad in ({"page_size": 201}, {"page_size": 0}, {"page": 0}, {"page": "two"}):
        assert_sheep_error(api.get(base(org), bearer=org.key, query=bad), 400, "validation_error")


def test_all_includes_inactive_but_never_deleted(api: Api, org: Org) -> None:
    create(api, org, "On", segment_type="static")
    create(api, org, "Off", segment_type="static", active=False)
    gone = create(api, org, "Gone", segment_type="static")
    assert api.delete(seg_path(org, gone), bearer=org.key).status == 200
    assert names(api.get(f"{base(org)}/all", bearer=org.key)) == ["Off", "On"]
    assert names(api.get(base(org), bearer=org.key)) == ["On"]


def test_find_matches_part_of_the_name_case_insensitively(api: Api, org: Org) -> None:
    for name in ("Major Donors", "minor donors", "Volunteers", "STRASSE donors"):
        create(api, org, name, segment_type="static")
    create(api, org, "Lapsed DONORS", segment_type="static", active=False)
    found = api.get(f"{base(org)}/find", bearer=org.key, query={"name": "DONOR"})
    assert names(found) == ["Lapsed DONORS", "Major Donors", "minor donors", "STRASSE donors"]
    assert found.json["count"] == 4
    # compared as names are: case-folded (ß folds to ss) and trimmed
    assert names(api.get(f"{base(org)}/find", bearer=org.key, query={"name": " straße "})) == ["STRASSE donors"]
    assert names(api.get(f"{base(org)}/find", bearer=org.key, query={"name": "nobody"})) == []
    assert_sheep_error(api.get(f"{base(org)}/find", bearer=org.key), 400, "validation_error")


def test_listings_never_show_another_orgs_segments(api: Api, org: Org, other_org: Org) -> None:
    create(api, org, "Mine", segment_type="static")
    create(api, other_org, "Theirs", segment_type="static")
    assert names(api.get(base(org), bearer=org.key)) == ["Mine"]
    assert names(api.get(f"{base(org)}/find", bearer=org.key, query={"name": "theirs"})) == []


# ------------------------------------------------------------------ trees


def test_trees_nest_auxiliary_and_child_segments(api: Api, org: Org) -> None:
    root = create(api, org, "Regions", segment_type="auxiliary")
    europe = create(api, org, "Europe", segment_type="auxiliary", parent_segment=root["uri"])
    create(api, org, "France", segment_type="static", parent_segment=europe["uri"])
    create(api, org, "Asia", segment_type="static", parent_segment=root["uri"])
    create(api, org, "Loose", segment_type="static")  # neither auxiliary nor a child: not in a tree
    other_root = create(api, org, "Campaigns", segment_type="auxiliary")
    resp = api.get(f"{base(org)}/trees", bearer=org.key)
    assert resp.status == 200, resp.text

    def shape(node: dict[str, Any]) -> Any:
        return (node["name"], [shape(c) for c in node["children"]])

    assert [shape(n) for n in resp.json["segments"]] == [
        ("Campaigns", []),
        ("Regions", [("Asia", []), ("Europe", [("France", [])])]),
    ]
    regions = resp.json["segments"][1]
    assert regions["uri"] == root["uri"] and regions["segment_type"] == "auxiliary"
    assert regions["children"][1]["parent_segment"] == root["uri"]
    # a segment whose parent is deleted becomes a root
    assert api.delete(seg_path(org, other_root), bearer=org.key).status == 200
    assert api.delete(seg_path(org, root), bearer=org.key).status == 200
    roots = api.get(f"{base(org)}/trees", bearer=org.key).json["segments"]
    assert sorted(shape(n) for n in roots) == [("Asia", []), ("Europe", [("France", [])])]


def _chain(api: Api, org: Org, n: int) -> list[dict[str, Any]]:
    made = [create(api, org, "n0", segment_type="auxiliary")]
    for i in range(1, n):
        made.append(create(api, org, f"n{i}", segment_type="auxiliary", parent_segment=made[-1]["uri"]))
    return made


def test_a_move_that_would_make_a_cycle_is_refused(api: Api, org: Org) -> None:
    a, b, c = _chain(api, org, 3)  # a <- b <- c
    for target in (c, b):  # a under its grandchild or child
        body = assert_sheep_error(put(api, org, a, {"parent_segment": target["uri"]}), 400, "validation_error")
        assert "cycle" in body["description"] and "'parent_segment'" in body["description"]
    body = assert_sheep_error(put(api, org, a, {"parent_segment": a["uri"]}), 400, "validation_error")
    assert "own parent" in body["description"]
    assert raw_segment(org.org_id, segment_id(a)).get("parent_segment") is None  # nothing changed
    # a legal move, then the former cycle is one no longer
    assert put(api, org, c, {"parent_segment": None}).status == 200
    moved = put(api, org, a, {"parent_segment": c["uri"]})
    assert moved.status == 200 and moved.json["parent_segment"] == c["uri"]


def test_a_cycle_through_a_deleted_segment_is_refused_too(api: Api, org: Org) -> None:
    y, x, a = _chain(api, org, 3)  # y <- x <- a
    assert api.delete(seg_path(org, x), bearer=org.key).status == 200
    # x is deleted but still links a to y: y under a would close a cycle once x is restored
    body = assert_sheep_error(put(api, org, y, {"parent_segment": a["uri"]}), 400, "validation_error")
    assert "cycle" in body["description"]
    assert api.post(f"{seg_path(org, x)}/restore", bearer=org.key).status == 200
    shapes = api.get(f"{base(org)}/trees", bearer=org.key).json["segments"]
    assert [(n["name"], n["children"][0]["name"]) for n in shapes] == [("n0", "n1")]


def test_trees_nest_at_most_32_levels_above_a_new_parent(api: Api, org: Org) -> None:
    chain = _chain(api, org, 33)
    body = assert_sheep_error(
        api.post(
            f"{base(org)}/create",
            bearer=org.key,
            body={
                "name": "too deep",
                "resource_type": "person",
                "segment_type": "auxiliary",
                "parent_segment": chain[-1]["uri"],
            },
        ),
        400,
        "validation_error",
    )
    assert "32 levels" in body["description"]
    assert create(api, org, "deep enough", segment_type="auxiliary", parent_segment=chain[-2]["uri"])


def test_parent_must_be_a_live_segment_of_the_bucket(api: Api, org: Org, other_org: Org) -> None:
    seg = create(api, org, "Child", segment_type="static")
    theirs = create(api, other_org, "Theirs", segment_type="auxiliary")
    for parent in (
        theirs["uri"],
        f"/{org.bucket}/segment/{uuid.UUID(theirs['uid']).hex}/",
        f"/{org.bucket}/segment/{uuid.uuid4().hex}/",
        "/elsewhere/segment/x/",
    ):
        assert_sheep_error(put(api, org, seg, {"parent_segment": parent}), 400, "validation_error")


# ------------------------------------------------------------------ count and members


def test_count_and_member_records(api: Api, org: Org) -> None:
    seg = create(api, org, "Handpicked", segment_type="static", description="chosen by hand")
    pids = [f"p-{i:03d}" for i in range(5)]
    assert add(api, org, segment_id(seg), pids).status == 200
    count = api.get(f"{seg_path(org, seg)}/count", bearer=org.key)
    assert count.status == 200
    assert count.json == {"count": 5, "description": "chosen by hand", "segment": seg["uri"], "build_state": "ready"}
    first = api.get(f"{seg_path(org, seg)}/all", bearer=org.key, query={"page_size": 2})
    assert first.status == 200
    assert {k: first.json[k] for k in ("count", "page", "page_size", "next_page", "segment")} == {
        "count": 5,
        "page": 1,
        "page_size": 2,
        "next_page": 2,
        "segment": seg["uri"],
    }
    item = first.json["results"][0]
    assert item["uri"] == f"/{org.bucket}/person/p-000/" and item["minerva_pid"] == "p-000"
    assert SHEEP_TIME.match(item["first_added_at"])
    seen = []
    for page in (1, 2, 3):
        resp = api.get(f"{seg_path(org, seg)}/all", bearer=org.key, query={"page_size": 2, "page": page})
        seen += [m["minerva_pid"] for m in resp.json["results"]]
    assert seen == pids and resp.json["next_page"] is None
    assert api.get(f"{seg_path(org, seg)}/all", bearer=org.key, query={"page": 4, "page_size": 2}).json["results"] == []


@pytest.mark.parametrize("suffix", ["/count", "/all"])
def test_segment_reads_of_foreign_malformed_or_deleted_uids_are_404(
    api: Api, org: Org, other_org: Org, suffix: str
) -> None:
    theirs = create(api, other_org, "Theirs", segment_type="static")
    gone = create(api, org, "Gone", segment_type="static")
    assert api.delete(seg_path(org, gone), bearer=org.key).status == 200
    for uid in (theirs["uid"], uuid.uuid4().hex, "not-a-uid", gone["uid"]):
        resp = api.get(f"{base(org)}/segment/{uid}{suffix}", bearer=org.key)
        assert assert_sheep_error(resp, 404, "not_found")["error"] == "Segment not found"


# ------------------------------------------------------------------ update


def test_update_changes_the_fields_given_and_keeps_the_others(api: Api, org: Org) -> None:
    seg = create(api, org, "Donors", segment_type="static", tags=["a"], description="d", mailchimp_sync=True)
    resp = put(api, org, seg, {"description": None, "tags": ["b", "c"], "active": False, "view_context": "crm"})
    assert resp.status == 200, resp.text
    got = resp.json
    assert (got["description"], got["tags"], got["active"], got["view_context"]) == ("", ["b", "c"], False, ["crm"])
    assert got["name"] == "Donors" and got["mailchimp_sync"] is True and got["uid"] == seg["uid"]
    assert got["definition_version"] == 1  # no definition field changed
    assert got["last_updated"] >= seg["last_updated"]


def test_a_segment_read_can_be_sent_back_whole(api: Api, org: Org) -> None:
    seg = create(api, org, "Roundtrip", segment_type="static")
    resp = put(api, org, seg, {**seg, "description": "edited"})
    assert resp.status == 200, resp.text
    assert resp.json["description"] == "edited"
    body = assert_sheep_error(put(api, org, seg, {**seg, "resource_type": "payment"}), 400, "validation_error")
    assert "'resource_type'" in body["description"]


def test_update_names_stay_unique_and_case_only_renames_are_fine(api: Api, org: Org) -> None:
    seg = create(api, org, "Donors", segment_type="static")
    create(api, org, "Volunteers", segment_type="static")
    assert_sheep_error(put(api, org, seg, {"name": "VOLUNTEERS"}), 409, "conflict")
    renamed = put(api, org, seg, {"name": "DONORS"})
    assert renamed.status == 200 and renamed.json["name"] == "DONORS"
    locks = [i["sk"] for i in raw_org_items(org.org_id, "NAME#")]
    assert sorted(locks) == ["NAME#donors", "NAME#volunteers"]
    assert put(api, org, seg, {"name": "Givers"}).status == 200
    create(api, org, "donors", segment_type="static")  # the old name is free again


def test_update_refuses_bad_bodies(api: Api, org: Org) -> None:
    seg = create(api, org, "Donors", segment_type="static")
    for body, field in (
        ({}, "Nothing"),
        ({"name": None}, "'name'"),
        ({"tags": None}, "'tags'"),
        ({"segment_type": "smart"}, "'segment_type'"),
        ({"name": ""}, "'name'"),
        ({"uris_include": ["/other/person/p-1/"]}, "'uris_include'"),
        ({"rules": [{"field": "a", "operator": "like"}]}, "operator"),
        ("[1]", "JSON object"),
    ):
        resp = api.request("PUT", seg_path(org, seg), bearer=org.key, body=body)
        assert field in assert_sheep_error(resp, 400, "validation_error")["description"], (body, resp.text)


def test_update_of_foreign_or_malformed_uids_is_404(api: Api, org: Org, other_org: Org) -> None:
    theirs = create(api, other_org, "Theirs", segment_type="static")
    for uid in (theirs["uid"], "zz", uuid.uuid4().hex):
        assert_sheep_error(
            api.request("PUT", f"{base(org)}/segment/{uid}", bearer=org.key, body={"name": "x"}), 404, "not_found"
        )
        assert_sheep_error(api.delete(f"{base(org)}/segment/{uid}", bearer=org.key), 404, "not_found")
        assert_sheep_error(api.post(f"{base(org)}/segment/{uid}/restore", bearer=org.key), 404, "not_found")
    assert (
        api.get(f"/segments/v2/{other_org.bucket}/segment/{theirs['uid']}/count", bearer=other_org.key).json["count"]
        == 0
    )


def test_update_replays_with_the_same_idempotency_key(api: Api, org: Org) -> None:
    seg = create(api, org, "Idem", segment_type="static")
    headers = {"Idempotency-Key": "put-1"}
    first = put(api, org, seg, {"name": "Idem 2"}, headers=headers)
    again = put(api, org, seg, {"name": "Idem 2"}, headers=headers)
    assert first.status == again.status == 200 and first.json == again.json
    assert_sheep_error(put(api, org, seg, {"name": "Idem 3"}, headers=headers), 400, "validation_error")


# ------------------------------------------------------------------ delete and restore


def test_delete_then_restore(api: Api, org: Org) -> None:
    seg = create(api, org, "Seasonal", segment_type="static")
    assert add(api, org, segment_id(seg), ["p-1", "p-2"]).status == 200
    deleted = api.delete(seg_path(org, seg), bearer=org.key)
    assert deleted.status == 200 and deleted.json["record_state"] == "deleted"
    assert deleted.json["user_interface"]["can_restore_segment"] is True
    assert_sheep_error(api.get(f"{seg_path(org, seg)}/count", bearer=org.key), 404, "not_found")
    assert_sheep_error(api.delete(seg_path(org, seg), bearer=org.key), 404, "not_found")
    restored = api.post(f"{seg_path(org, seg)}/restore", bearer=org.key)
    assert restored.status == 200, restored.text
    assert restored.json["record_state"] == "active" and restored.json["name"] == "Seasonal"
    assert api.get(f"{seg_path(org, seg)}/count", bearer=org.key).json["count"] == 2  # members served again
    assert_sheep_error(api.post(f"{seg_path(org, seg)}/restore", bearer=org.key), 409, "conflict")  # not deleted
    # the name is held again
    assert_sheep_error(
        api.post(f"{base(org)}/create", bearer=org.key, body={"name": "seasonal", "resource_type": "person"}),
        409,
        "conflict",
    )


def test_restore_is_refused_when_the_name_was_taken_meanwhile(api: Api, org: Org) -> None:
    seg = create(api, org, "Seasonal", segment_type="static")
    assert api.delete(seg_path(org, seg), bearer=org.key).status == 200
    create(api, org, "SEASONAL", segment_type="static")
    body = assert_sheep_error(api.post(f"{seg_path(org, seg)}/restore", bearer=org.key), 409, "conflict")
    assert "Seasonal" in body["description"]
    assert raw_segment(org.org_id, segment_id(seg))["record_state"] == "deleted"
    assert [i["segment_id"] for i in raw_org_items(org.org_id, "NAME#seasonal")] != [segment_id(seg)]


def test_restore_of_a_rule_segment_rebuilds_it(api: Api, org: Org) -> None:
    seg = create(api, org, "Rule", rules=[{"field": "tier", "operator": "equals", "value": "gold"}])
    assert api.delete(seg_path(org, seg), bearer=org.key).status == 200
    restored = api.post(f"{seg_path(org, seg)}/restore", bearer=org.key).json
    assert (restored["build_state"], restored["definition_version"]) == ("building", 1)


# ------------------------------------------------------------------ who may do what


@pytest.fixture
def system_segment(org: Org) -> dict[str, Any]:
    made = auth.create_system_segment(org.org_id, org.bucket, "All people", description="everyone")
    return {"uid": uuid.UUID(made.segment_id).hex}


def test_system_segments_cannot_be_updated_or_deleted(api: Api, org: Org, system_segment: dict[str, Any]) -> None:
    for resp in (
        put(api, org, system_segment, {"name": "Some people"}),
        put(api, org, system_segment, {"system_segment": False}),
        put(api, org, system_segment, {"system_segment": True}),
        api.delete(seg_path(org, system_segment), bearer=org.key),
    ):
        assert_sheep_error(resp, 403, "permission_denied")
    listed = api.get(f"{base(org)}/find", bearer=org.key, query={"name": "all people"}).json["segments"]
    assert [s["name"] for s in listed] == ["All people"]
    assert listed[0]["system_segment"] is True and listed[0]["user_interface"]["can_edit_segment"] is False


def test_the_use_case_refuses_system_segments_for_any_api_actor(
    aws: None, org: Org, system_segment: dict[str, Any]
) -> None:
    from segments import errors

    who = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_x")
    with pytest.raises(errors.Forbidden):
        usecase.update_segment(who, system_segment["uid"], {"tags": ["x"]})


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/all"),
        ("GET", "/find?name=a"),
        ("GET", "/trees"),
        ("GET", "/crm"),
        ("GET", "/segment/{uid}/count"),
        ("GET", "/segment/{uid}/all"),
        ("PUT", "/segment/{uid}"),
        ("DELETE", "/segment/{uid}"),
        ("POST", "/segment/{uid}/restore"),
    ],
)
def test_a_key_for_another_bucket_is_403(api: Api, org: Org, other_org: Org, method: str, suffix: str) -> None:
    theirs = create(api, other_org, "Theirs", segment_type="static")
    path = base(other_org) + suffix.replace("{uid}", theirs["uid"])
    resp = api.request(method, path, bearer=org.key, body={"name": "Mine now"} if method == "PUT" else None)
    assert_sheep_error(resp, 403, "permission_denied")
    assert raw_segment(other_org.org_id, segment_id(theirs))["name"] == "Theirs"
    assert api.request(method, path, body=None).status == 401
