"""POST /segments/v2/{bucket}/create (docs/api.md#sheepcrm-create): the SheepCRM surface over the same core."""

from __future__ import annotations

import re

import pytest
from helpers.assertions import SHEEP_TIME, assert_sheep_error

from conftest import Api, Org
from segments.store import api_keys
from segments.store import segments as segment_store

SEED_FIELDS = {
    "active",
    "created",
    "description",
    "display_value",
    "last_updated",
    "legacy_uid",
    "mailchimp_sync",
    "name",
    "parent_segment",
    "record_state",
    "resource_type",
    "rules",
    "segment_type",
    "system_segment",
    "tags",
    "uid",
    "uri",
    "uris_exclude",
    "uris_include",
    "user_interface",
    "view_context",
}
# [ours]: the membership definition's version and build; the Mailchimp sync's fieldset
OUR_FIELDS = {"build_state", "definition_version", "fieldset_id"}


def path(org: Org) -> str:
    return f"/segments/v2/{org.bucket}/create"


def test_create_answers_201_with_the_seed_segment_object(api: Api, org: Org) -> None:
    resp = api.post(path(org), bearer=org.key, body={"name": "Donors", "resource_type": "person", "tags": ["vip"]})
    assert resp.status == 201, resp.text
    seg = resp.json
    assert set(seg) == SEED_FIELDS | OUR_FIELDS
    assert seg["definition_version"] == 1 and seg["build_state"] == "building"  # dynamic: the engine fills it
    assert seg["name"] == seg["display_value"] == "Donors"
    assert seg["segment_type"] == "dynamic" and seg["active"] is True
    assert seg["system_segment"] is False and seg["mailchimp_sync"] is False and seg["fieldset_id"] == ""
    assert seg["record_state"] == "active" and seg["legacy_uid"] == ""
    assert re.match(r"^[0-9a-f]{32}$", seg["uid"])
    assert seg["uri"] == f"/{org.bucket}/segment/{seg['uid']}/"
    assert SHEEP_TIME.match(seg["created"]) and SHEEP_TIME.match(seg["last_updated"])
    assert set(seg["user_interface"]) == {
        "can_create_segment",
        "can_delete_segment",
        "can_edit_segment",
        "can_restore_segment",
        "policy_name",
    }
    assert isinstance(seg["view_context"], list)


def test_fields_may_come_from_query_parameters(api: Api, org: Org) -> None:
    resp = api.post(
        path(org),
        bearer=org.key,
        body=None,
        query={
            "name": "From query",
            "resource_type": "person",
            "active": "false",
            "tags": "a,b",
            "segment_type": "static",
            "view_context": "crm",
        },
    )
    assert resp.status == 201, resp.text
    seg = resp.json
    assert (seg["name"], seg["active"], seg["tags"], seg["segment_type"], seg["view_context"]) == (
        "From query",
        False,
        ["a", "b"],
        "static",
        ["crm"],
    )


def test_body_wins_over_query(api: Api, org: Org) -> None:
    resp = api.post(
        path(org), bearer=org.key, query={"name": "query name", "resource_type": "person"}, body={"name": "body name"}
    )
    assert resp.status == 201 and resp.json["name"] == "body name"


def test_visible_through_the_minerva_surface_too(api: Api, org: Org) -> None:
    seg = api.post(path(org), bearer=org.key, body={"name": "Both", "resource_type": "person"}).json
    segment_id = str(__import__("uuid").UUID(seg["uid"]))
    stored = segment_store.get_live(org.org_id, segment_id)
    assert stored is not None and stored["name"] == "Both" and stored["current_size"] == 0
    # and the name is taken on both surfaces
    assert api.post("/v2/segments/create", key=org.key, body={"name": "both"}).status == 404


def test_duplicate_name_is_409_conflict(api: Api, org: Org) -> None:
    assert api.post("/v2/segments/create", key=org.key, body={"name": "Taken"}).status == 200
    assert_sheep_error(
        api.post(path(org), bearer=org.key, body={"name": "TAKEN", "resource_type": "person"}), 409, "conflict"
    )


@pytest.mark.parametrize(
    ("payload", "field", "allowed"),
    [
        ({"name": "x"}, "resource_type", None),
        ({"name": "x", "resource_type": "sheep"}, "resource_type", "'person'"),
        ({"name": "x", "resource_type": "person", "segment_type": "smart"}, "segment_type", "'auxiliary'"),
        ({"name": "x", "resource_type": "person", "view_context": "kitchen"}, "view_context", "'crm'"),
        (
            {"name": "x", "resource_type": "person", "rules": [{"field": "a", "operator": "like", "value": 1}]},
            "operator",
            "'starts_with'",
        ),
        ({"name": "x", "resource_type": "person", "active": "maybe"}, "active", None),
        ({"name": "", "resource_type": "person"}, "name", None),
    ],
)
def test_validation_errors_name_the_field_and_the_allowed_values(
    api: Api, org: Org, payload: dict, field: str, allowed: str | None
) -> None:
    body = assert_sheep_error(api.post(path(org), bearer=org.key, body=payload), 400, "validation_error")
    assert field in body["description"]
    if allowed:
        assert allowed in body["description"]


def test_raw_rules_are_a_boolean_tree_never_a_query_string(api: Api, org: Org) -> None:
    tree = {
        "all": [
            {"field": "employer", "operator": "equals", "value": "ACME"},
            {"not": {"field": "deceased", "operator": "equals", "value": True}},
        ]
    }
    rules = [{"field": "*", "operator": "raw", "value": tree}]
    ok = api.post(path(org), bearer=org.key, body={"name": "raw", "resource_type": "person", "rules": rules})
    assert ok.status == 201, ok.text
    bad = api.post(
        path(org),
        bearer=org.key,
        body={
            "name": "raw2",
            "resource_type": "person",
            "rules": [{"field": "*", "operator": "raw", "value": "db.people.find({})"}],
        },
    )
    assert_sheep_error(bad, 400, "validation_error")


def test_uris_must_belong_to_the_bucket(api: Api, org: Org) -> None:
    good = {
        "name": "u",
        "resource_type": "person",
        "segment_type": "static",
        "uris_include": [f"/{org.bucket}/person/p-abc123/"],
    }
    assert api.post(path(org), bearer=org.key, body=good).status == 201
    bad = {**good, "name": "u2", "uris_include": ["/another/person/p-abc123/"]}
    assert_sheep_error(api.post(path(org), bearer=org.key, body=bad), 400, "validation_error")


def test_parent_segment_must_exist_in_the_bucket(api: Api, org: Org) -> None:
    parent = api.post(
        path(org), bearer=org.key, body={"name": "tree", "resource_type": "person", "segment_type": "auxiliary"}
    ).json
    child = api.post(
        path(org), bearer=org.key, body={"name": "leaf", "resource_type": "person", "parent_segment": parent["uri"]}
    )
    assert child.status == 201 and child.json["parent_segment"] == parent["uri"]
    orphan = api.post(
        path(org),
        bearer=org.key,
        body={"name": "orphan", "resource_type": "person", "parent_segment": f"/{org.bucket}/segment/{'0' * 32}/"},
    )
    assert_sheep_error(orphan, 400, "validation_error")


def test_missing_or_unknown_token_is_401(api: Api, org: Org) -> None:
    assert api.post(path(org), body={"name": "x", "resource_type": "person"}).status == 401
    assert api.post(path(org), bearer="nope", body={"name": "x", "resource_type": "person"}).status == 401


def test_a_key_for_another_bucket_is_403(api: Api, org: Org, other_org: Org) -> None:
    resp = api.post(path(other_org), bearer=org.key, body={"name": "x", "resource_type": "person"})
    assert resp.status == 403
    assert api_keys.list_for_org(other_org.org_id)  # untouched, and nothing was created for it


def test_function_checks_the_bucket_even_behind_the_gateway(aws: None, org: Org) -> None:
    from conftest import LambdaContext, apigw_event, function_handler

    event = apigw_event(
        "POST",
        "/segments/v2/elsewhere/create",
        resource="/segments/v2/{bucket}/create",
        body={"name": "x", "resource_type": "person"},
        path_params={"bucket": "elsewhere"},
        headers={"content-type": "application/json"},
        authorizer={"org_id": org.org_id, "bucket": org.bucket, "key_id": org.key_id},
    )
    result = function_handler("SheepSegmentsFunction")(event, LambdaContext())
    assert result["statusCode"] == 403


def test_idempotency_key_replays_the_first_201(api: Api, org: Org) -> None:
    headers = {"Idempotency-Key": "sheep-1"}
    body = {"name": "Idem", "resource_type": "person"}
    first = api.post(path(org), bearer=org.key, body=body, headers=headers)
    again = api.post(path(org), bearer=org.key, body=body, headers=headers)
    assert first.status == again.status == 201 and first.json == again.json


# ------------------------------------------------------------------ name optional, arrays, booleans


def test_a_create_without_name_is_named_after_its_uid(api: Api, org: Org, other_org: Org) -> None:
    from helpers.vendor_schema import validate_vendor

    for who in (org, other_org):
        first = api.post(path(who), bearer=who.key, body={"resource_type": "person", "segment_type": "static"})
        second = api.post(path(who), bearer=who.key, query={"resource_type": "person"}, body=None)
        for resp in (first, second):
            assert resp.status == 201, resp.text
            validate_vendor("POST", "/segments/v2/{bucket}/create", 201, resp.json)
            assert resp.json["name"] == resp.json["display_value"] == f"Untitled segment {resp.json['uid']}"
        assert first.json["name"] != second.json["name"]
        # the name is held as any name is: taken while the segment lives, free once renamed
        taken = api.post(
            path(who), bearer=who.key, body={"name": first.json["name"].upper(), "resource_type": "person"}
        )
        assert_sheep_error(taken, 409, "conflict")
        renamed = api.request(
            "PUT", f"/segments/v2/{who.bucket}/segment/{first.json['uid']}", bearer=who.key, body={"name": "Named"}
        )
        assert renamed.status == 200
        again = api.post(path(who), bearer=who.key, body={"name": first.json["name"], "resource_type": "person"})
        assert again.status == 201


def test_an_unnamed_create_replays_under_its_idempotency_key(api: Api, org: Org) -> None:
    headers = {"Idempotency-Key": "unnamed-1"}
    body = {"resource_type": "person", "segment_type": "static"}
    first = api.post(path(org), bearer=org.key, body=body, headers=headers)
    again = api.post(path(org), bearer=org.key, body=body, headers=headers)
    assert first.status == again.status == 201 and first.json == again.json
    listed = api.get(f"/segments/v2/{org.bucket}/all", bearer=org.key).json["segments"]
    assert [s["uid"] for s in listed] == [first.json["uid"]]


def test_array_parameters_repeat_their_key_or_join_with_commas(api: Api, org: Org) -> None:
    uri = f"/{org.bucket}/person/"
    query = (
        "resource_type=person&segment_type=hybrid&name=Arrays"
        "&tags=vip&tags=donor,lapsed&view_context=crm&view_context=giving"
        f"&uris_include={uri}p-1/&uris_include={uri}p-2/,{uri}p-3/&uris_exclude={uri}p-9/&uris_exclude={uri}p-8/"
        '&rules={"field":"city","operator":"equals","value":"York"}'
        '&rules=[{"field":"score","operator":"greater_than","value":5}]'
    )
    resp = api.post(f"{path(org)}?{query.replace('/', '%2F').replace(' ', '')}", bearer=org.key, body=None)
    assert resp.status == 201, resp.text
    seg = resp.json
    assert seg["tags"] == ["vip", "donor", "lapsed"] and seg["view_context"] == ["crm", "giving"]
    assert seg["uris_include"] == [f"{uri}p-1/", f"{uri}p-2/", f"{uri}p-3/"]
    assert seg["uris_exclude"] == [f"{uri}p-9/", f"{uri}p-8/"]
    assert [r["field"] for r in seg["rules"]] == ["city", "score"]
    # a scalar given twice is refused, not guessed
    twice = api.post(f"{path(org)}?resource_type=person&name=a&name=b", bearer=org.key, body=None)
    assert_sheep_error(twice, 400, "validation_error")


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "1", None])
def test_booleans_in_a_body_are_json_booleans(api: Api, org: Org, value: object) -> None:
    for field in ("active", "mailchimp_sync", "system_segment"):
        body = {"name": "b", "resource_type": "person", field: value}
        resp = api.post(path(org), bearer=org.key, body=body)
        assert_sheep_error(resp, 400, "validation_error")
        assert f"'{field}'" in resp.json["description"]


def test_booleans_in_a_query_are_true_or_false(api: Api, org: Org) -> None:
    for bad in ("yes", "1", "True", ""):
        resp = api.post(
            path(org), bearer=org.key, body=None, query={"name": "q", "resource_type": "person", "active": bad}
        )
        assert_sheep_error(resp, 400, "validation_error")
    ok = api.post(
        path(org), bearer=org.key, body=None, query={"name": "q", "resource_type": "person", "active": "false"}
    )
    assert ok.status == 201 and ok.json["active"] is False
