"""Every routed vendor operation of the SheepCRM surface answers the vendor's own schema for it
(tests/vendor/sheepcrm_segments_openapi.yaml, through tests/helpers/vendor_schema.py), through the
gateway, for both orgs: the list wrapper, the trees, create (with and without a name), the view
context listing, a segment's count and records, deleted segments, and array query parameters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.assertions import assert_sheep_error
from helpers.vendor_schema import validate_vendor, validate_vendor_error, vendor_component

from conftest import Api, ApiResponse, Org

LISTS = ["/segments/v2/{bucket}", "/segments/v2/{bucket}/all", "/segments/v2/{bucket}/find"]


def create(api: Api, org: Org, **fields: Any) -> dict[str, Any]:
    resp = api.post(f"/segments/v2/{org.bucket}/create", bearer=org.key, body={"resource_type": "person", **fields})
    assert resp.status == 201, resp.text
    validate_vendor("POST", "/segments/v2/{bucket}/create", 201, resp.json)
    made: dict[str, Any] = resp.json
    return made


def get(api: Api, org: Org, template: str, view_context: str = "", **kw: Any) -> ApiResponse:
    path = template.replace("{bucket}", org.bucket).replace("{view_context}", view_context)
    resp = api.get(path, bearer=org.key, **kw)
    assert resp.status == 200, resp.text
    validate_vendor("GET", template, 200, resp.json)
    return resp


def seed(api: Api, org: Org) -> dict[str, dict[str, Any]]:
    """A root with a child and a grandchild, a loose segment in two view contexts, an inactive one."""
    root = create(api, org, name=f"{org.bucket} root", segment_type="auxiliary", description="groups")
    child = create(api, org, name=f"{org.bucket} child", segment_type="auxiliary", parent_segment=root["uri"])
    leaf = create(
        api, org, name=f"{org.bucket} leaf", segment_type="static", parent_segment=child["uri"], view_context="crm"
    )
    loose = create(
        api,
        org,
        name=f"{org.bucket} loose",
        segment_type="dynamic",
        rules=[{"field": "city", "operator": "equals", "value": "York"}],
        view_context=["crm", "giving"],
        tags=["vip"],
    )
    dormant = create(api, org, name=f"{org.bucket} dormant", segment_type="static", active=False)
    return {"root": root, "child": child, "leaf": leaf, "loose": loose, "dormant": dormant}


@pytest.fixture
def both(api: Api, org: Org, other_org: Org) -> list[tuple[Org, dict[str, dict[str, Any]]]]:
    return [(org, seed(api, org)), (other_org, seed(api, other_org))]


def test_listings_answer_the_vendors_segments_key_with_paging_beside_it(
    api: Api, both: list[tuple[Org, dict[str, dict[str, Any]]]]
) -> None:
    for org, made in both:
        for template in LISTS:
            resp = get(api, org, template, query={"name": org.bucket} if template.endswith("find") else None)
            body = resp.json
            assert "results" not in body and {"count", "page", "page_size", "next_page"} <= set(body)
            uids = {s["uid"] for s in body["segments"]}
            assert uids <= {s["uid"] for s in made.values()}  # never another org's
            assert (made["dormant"]["uid"] in uids) == (template != LISTS[0])
            assert body["count"] == len(body["segments"])
        one = get(api, org, LISTS[1], query={"page_size": 2, "page": 2}).json
        assert len(one["segments"]) == 2 and one["next_page"] == 3


def test_trees_are_full_segments_with_their_descendants_under_children(
    api: Api, both: list[tuple[Org, dict[str, dict[str, Any]]]]
) -> None:
    segment = vendor_component("single_segment")
    for org, made in both:
        body = get(api, org, "/segments/v2/{bucket}/trees").json
        assert "results" not in body
        [root] = body["segments"]
        assert root["uid"] == made["root"]["uid"] and root["description"] == "groups"
        [child] = root["children"]
        [leaf] = child["children"]
        assert (child["uid"], leaf["uid"], leaf["children"]) == (made["child"]["uid"], made["leaf"]["uid"], [])
        for node in (child, leaf):  # below the roots the vendor's schema does not look: check them here
            validate_vendor("GET", "/segments/v2/{bucket}/all", 200, {"segments": [node]})
            assert set(segment["properties"]) <= set(node)
        assert leaf["parent_segment"] == child["uri"] and leaf["view_context"] == ["crm"]
        assert root["parent_segment"] == ""  # a root: no parent, and no null


def test_view_context_lists_the_segments_holding_it(
    api: Api, both: list[tuple[Org, dict[str, dict[str, Any]]]]
) -> None:
    for org, made in both:
        crm = get(api, org, "/segments/v2/{bucket}/{view_context}", "crm").json["segments"]
        assert [s["uid"] for s in crm] == [made["leaf"]["uid"], made["loose"]["uid"]]  # by name
        giving = get(api, org, "/segments/v2/{bucket}/{view_context}", "giving").json["segments"]
        assert [s["uid"] for s in giving] == [made["loose"]["uid"]]
        assert get(api, org, "/segments/v2/{bucket}/{view_context}", "teams").json == {"segments": []}
    org, made = both[0]
    assert api.delete(f"/segments/v2/{org.bucket}/segment/{made['leaf']['uid']}", bearer=org.key).status == 200
    assert [s["uid"] for s in get(api, org, "/segments/v2/{bucket}/{view_context}", "crm").json["segments"]] == [
        made["loose"]["uid"]
    ]


def test_view_context_outside_the_enum_is_400_and_the_vendors_own_words_are_not_shadowed(
    api: Api, org: Org, both: list[tuple[Org, dict[str, dict[str, Any]]]]
) -> None:
    for bad in ("kitchen", "CRM", "crm,giving", "%20crm"):
        resp = api.get(f"/segments/v2/{org.bucket}/{bad}", bearer=org.key)
        body = assert_sheep_error(resp, 400, "validation_error")
        validate_vendor("GET", "/segments/v2/{bucket}/{view_context}", 400, body)
        assert "'view_context'" in body["description"] and "minimal_membership_directory" in body["description"]
    unrouted = api.get(f"/segments/v2/{org.bucket}/no/such/path", bearer=org.key)
    for word in ("segment",):  # no literal route of theirs here: it answers as unrouted paths do
        resp = api.get(f"/segments/v2/{org.bucket}/{word}", bearer=org.key)
        assert (resp.status, resp.json) == (unrouted.status, unrouted.json) == (404, unrouted.json)
    assert "fieldsets" in get(api, org, "/segments/v2/{bucket}/fieldset").json  # the fieldset route, not a view context
    for word in ("create", "all/excel", "all/xlsx", "all/pdf", "fieldset/x"):
        assert api.get(f"/segments/v2/{org.bucket}/{word}", bearer=org.key).status == 404
    # the literal routes keep their own handlers
    assert "segments" in get(api, org, "/segments/v2/{bucket}/all").json
    assert "count" in get(api, org, "/segments/v2/{bucket}/find", query={"name": "x"}).json
    assert "count" not in get(api, org, "/segments/v2/{bucket}/trees").json
    assert api.get(f"/segments/v2/{org.bucket}/crm").status == 401


def test_count_and_records_answer_the_vendors_shapes(
    api: Api, both: list[tuple[Org, dict[str, dict[str, Any]]]]
) -> None:
    for org, made in both:
        for seg in made.values():
            path = "/segments/v2/{bucket}/segment/" + seg["uid"]
            count = api.get(path.replace("{bucket}", org.bucket) + "/count", bearer=org.key)
            assert count.status == 200
            validate_vendor("GET", "/segments/v2/{bucket}/segment/{uid}/count", 200, count.json)
            assert count.json["description"] == seg["description"]
            records = api.get(path.replace("{bucket}", org.bucket) + "/all", bearer=org.key)
            assert records.status == 200
            validate_vendor("GET", "/segments/v2/{bucket}/segment/{uid}/all", 200, records.json)
    org, made = both[0]
    assert api.get(f"/segments/v2/{org.bucket}/segment/{made['leaf']['uid']}/count", bearer=org.key).json[
        "description"
    ] == ("")


def test_every_error_body_is_the_vendors_error(api: Api, org: Org) -> None:
    for resp in (
        api.post(f"/segments/v2/{org.bucket}/create", bearer=org.key, body={"resource_type": "sheep"}),
        api.get(f"/segments/v2/{org.bucket}/all", bearer=org.key, query={"page": 0}),
        api.get(f"/segments/v2/{org.bucket}/segment/{uuid.uuid4().hex}/count", bearer=org.key),
        api.get(f"/segments/v2/{org.bucket}/all"),
    ):
        assert resp.status >= 400
        validate_vendor_error(resp.json)


# ------------------------------------------------------------------ deleted segments


def test_a_deleted_segment_is_not_active(api: Api, org: Org, other_org: Org) -> None:
    for who in (org, other_org):
        seg = create(api, who, name="Gone", segment_type="static")
        dormant = create(api, who, name="Dormant", segment_type="static", active=False)
        for made, active_after_restore in ((seg, True), (dormant, False)):
            path = f"/segments/v2/{who.bucket}/segment/{made['uid']}"
            deleted = api.delete(path, bearer=who.key)
            assert deleted.status == 200
            assert (deleted.json["record_state"], deleted.json["active"]) == ("deleted", False)
            validate_vendor("GET", "/segments/v2/{bucket}/all", 200, {"segments": [deleted.json]})
            restored = api.post(f"{path}/restore", bearer=who.key)
            assert (restored.json["record_state"], restored.json["active"]) == ("active", active_after_restore)
