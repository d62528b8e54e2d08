"""SheepCRM reads of a segment's records, through the gateway: config, lookup, the members' signals,
action/replace (501) and a notification's 404 - each checked against the vendor's schema, for two
orgs and hostile input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.signals import add, create_segment, ingest, person_event, signals_fixture  # noqa: F401 - `signals`
from helpers.vendor_schema import validate_vendor, validate_vendor_error

from conftest import Api, Org
from segments.store import people
from segments.usecases import lookup as lookup_usecase
from segments.usecases import segment_config

BASE = "/segments/v2/{bucket}"


def sheep_create(api: Api, org: Org, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "resource_type": "person", "segment_type": "static", **fields}
    resp = api.post(f"/segments/v2/{org.bucket}/create", bearer=org.key, body=body)
    assert resp.status == 201, resp.text
    return dict(resp.json)


def members(api: Api, org: Org, uid: str, *pids: str) -> None:
    add(api, org.key, str(uuid.UUID(uid)), *pids)


def error_of(resp: Any, status: int, kind: str) -> dict[str, Any]:
    assert resp.status == status, resp.text
    validate_vendor_error(resp.json)
    assert resp.json["type"] == kind, resp.json
    return dict(resp.json)


# ------------------------------------------------------------------ config


def test_config_is_the_vendors_object_derived_from_the_resource_type(api: Api, org: Org) -> None:
    seg = sheep_create(api, org, "People")
    resp = api.get(f"/segments/v2/{org.bucket}/segment/{seg['uid']}/config", bearer=org.key)
    assert resp.status == 200, resp.text
    validate_vendor("GET", BASE + "/segment/{uid}/config", 200, resp.json)
    body = resp.json
    mapping = body["mapping"]
    assert (body["resource_type"], body["segment"], body["segment_type"]) == ("person", seg["uri"], "static")
    assert mapping["collection"] == "person" and mapping["contact_field"] == "uri"
    assert mapping["field_list"] == [f["field"] for f in mapping["fields"]]
    assert {"first_name", "last_name", "email", "minerva_pid"} <= set(mapping["field_list"])
    assert all(f["label"] and f["form_type"] for f in mapping["fields"])
    assert {f["field"]: f["form_type"] for f in mapping["fields"]}["email"] == "email"
    # what the config promises the lookup searches is what the lookup searches
    assert tuple(mapping["search_fields"]) == segment_config.fieldset("person").search_fields
    assert mapping["prefix"] == f"/{org.bucket}/person/"

    orgs = sheep_create(api, org, "Companies", resource_type="organisation")
    resp = api.get(f"/segments/v2/{org.bucket}/segment/{orgs['uid']}/config", bearer=org.key)
    assert resp.status == 200, resp.text
    validate_vendor("GET", BASE + "/segment/{uid}/config", 200, resp.json)
    assert resp.json["mapping"]["collection"] == "organisation"
    assert resp.json["mapping"]["field_list"] == ["uri", "display_value", "created", "last_updated"]
    assert resp.json["mapping"]["contact_field"] == "uri"  # an organisation is a contact
    groups = sheep_create(api, org, "Groups", resource_type="group")
    mapping = api.get(f"/segments/v2/{org.bucket}/segment/{groups['uid']}/config", bearer=org.key).json["mapping"]
    assert mapping["contact_field"] == "" and mapping["name"] == "Groups"  # none: "", never null


def test_config_of_an_unknown_deleted_malformed_or_foreign_segment_is_404(api: Api, org: Org, other_org: Org) -> None:
    seg = sheep_create(api, org, "Mine")
    path = "/segments/v2/{bucket}/segment/{uid}/config"
    assert api.get(path.format(bucket=org.bucket, uid=seg["uid"]), bearer=org.key).status == 200
    for uid in (uuid.uuid4().hex, "not-a-uid", "0" * 31 + "g"):
        error_of(api.get(path.format(bucket=org.bucket, uid=uid), bearer=org.key), 404, "not_found")
    # another org: its own bucket does not hold the segment; the first org's bucket is refused by the gateway
    error_of(api.get(path.format(bucket=other_org.bucket, uid=seg["uid"]), bearer=other_org.key), 404, "not_found")
    error_of(api.get(path.format(bucket=org.bucket, uid=seg["uid"]), bearer=other_org.key), 403, "permission_denied")
    assert api.delete(f"/segments/v2/{org.bucket}/segment/{seg['uid']}", bearer=org.key).status == 200
    error_of(api.get(path.format(bucket=org.bucket, uid=seg["uid"]), bearer=org.key), 404, "not_found")


# ------------------------------------------------------------------ lookup


PEOPLE = {
    "p-ada1": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
    "p-bob2": {"first_name": "Bob", "last_name": "Babbage", "email": "bob@engines.example"},
    "p-bob20": {"name": "Roberta Stra\u00dfe", "email": "rs@example.org"},
    "p-carl3": {"first_name": "Carl", "last_name": "Gauss"},
}


@pytest.fixture
def registry(api: Api, org: Org, other_org: Org) -> dict[str, Any]:
    """A static segment of four people (three with a record, p-none without), a non-member Ada, and
    the second org holding a member named Ada of its own."""
    for pid, attrs in PEOPLE.items():
        people.put(org.org_id, pid, attrs)
    people.put(org.org_id, "p-ada9", {"first_name": "Ada", "last_name": "Outsider"})
    seg = sheep_create(api, org, "Lookup")
    members(api, org, seg["uid"], *PEOPLE, "p-none")
    people.put(other_org.org_id, "p-ada7", {"first_name": "Ada", "last_name": "Elsewhere"})
    theirs = sheep_create(api, other_org, "Theirs")
    members(api, other_org, theirs["uid"], "p-ada7", "p-ada1")
    return {"uid": seg["uid"], "theirs": theirs["uid"]}


def look(api: Api, org: Org, uid: str, q: str, **query: Any) -> Any:
    return api.get(f"/segments/v2/{org.bucket}/segment/{uid}/lookup", bearer=org.key, query={"q": q, **query})


def found(resp: Any) -> list[str]:
    assert resp.status == 200, resp.text
    validate_vendor("GET", BASE + "/segment/{uid}/lookup", 200, resp.json)
    return [i["minerva_pid"] for i in resp.json]


def test_lookup_by_name_or_email_part_case_insensitively(api: Api, org: Org, registry: dict[str, Any]) -> None:
    uid = registry["uid"]
    resp = look(api, org, uid, "ADA")
    assert found(resp) == ["p-ada1"]  # not the non-member Ada, nor the other org's
    item = resp.json[0]
    uri = f"/{org.bucket}/person/p-ada1/"
    assert (item["uri"], item["id"], item["value"], item["display_value"]) == (uri, uri, uri, "Ada Lovelace")
    assert item["label"] == item["text"] == "Ada Lovelace <ada@example.org>"
    assert resp.headers["X-Lookup-Truncated"] == "false"
    assert found(look(api, org, uid, "ada lovelace")) == ["p-ada1"]  # first and last name together
    assert found(look(api, org, uid, "example.org")) == ["p-ada1", "p-bob20"]
    assert found(look(api, org, uid, "STRASSE")) == ["p-bob20"]  # full case folding
    assert found(look(api, org, uid, "nobody")) == []


def test_lookup_by_pid_or_uri_prefix(api: Api, org: Org, registry: dict[str, Any]) -> None:
    uid, bucket = registry["uid"], org.bucket
    assert found(look(api, org, uid, "p-bob")) == ["p-bob2", "p-bob20"]
    assert found(look(api, org, uid, f"/{bucket}/person/p-bob2")) == ["p-bob2", "p-bob20"]
    assert found(look(api, org, uid, f"/{bucket}/person/p-bob2/")) == ["p-bob2"]  # a whole uri: that record
    resp = look(api, org, uid, "p-none")  # a member without a person record is still a record of the segment
    assert found(resp) == ["p-none"] and resp.json[0]["display_value"] == "p-none"
    assert found(look(api, org, uid, "/other-bucket/person/p-ada1/")) == []
    assert found(look(api, org, uid, f"/{bucket}/segment/p-ada1/")) == []


def test_lookup_limit_and_the_scan_cap_are_signalled(
    api: Api, org: Org, registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = registry["uid"]
    resp = look(api, org, uid, "p-", limit=2)
    assert found(resp) == ["p-ada1", "p-bob2"] and resp.headers["X-Lookup-Truncated"] == "true"
    # the cap: Gauss is the 4th member in PID order; a scan capped at 2 members does not reach him, and says so
    monkeypatch.setattr(lookup_usecase, "SCAN_CAP", 2)
    monkeypatch.setattr(lookup_usecase, "PAGE", 1)
    resp = look(api, org, uid, "gauss")
    assert found(resp) == []
    assert (resp.headers["X-Lookup-Truncated"], resp.headers["X-Lookup-Scanned"]) == ("true", "2")
    monkeypatch.setattr(lookup_usecase, "SCAN_CAP", 5)
    resp = look(api, org, uid, "gauss")
    assert found(resp) == ["p-carl3"] and resp.headers["X-Lookup-Truncated"] == "false"


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({}, "'q' is required"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "ada\x00"}, "control"),
        ({"q": "\u202eada"}, "control"),
        ({"q": "   "}, "1-200"),
        ({"q": "ada", "limit": 0}, "limit"),
        ({"q": "ada", "limit": 101}, "limit"),
        ({"q": "ada", "limit": "many"}, "limit"),
    ],
)
def test_lookup_refuses_a_bad_q_or_limit(
    api: Api, org: Org, registry: dict[str, Any], query: dict[str, Any], needle: str
) -> None:
    resp = api.get(f"/segments/v2/{org.bucket}/segment/{registry['uid']}/lookup", bearer=org.key, query=query)
    body = error_of(resp, 400, "validation_error")
    assert needle in body["description"], body


def test_lookup_is_scoped_to_the_callers_org(api: Api, org: Org, other_org: Org, registry: dict[str, Any]) -> None:
    error_of(look(api, other_org, registry["uid"], "ada"), 404, "not_found")
    error_of(
        api.get(f"/segments/v2/{org.bucket}/segment/{registry['uid']}/lookup", bearer=other_org.key, query={"q": "a"}),
        403,
        "permission_denied",
    )
    assert found(look(api, other_org, registry["theirs"], "ada")) == ["p-ada7"]  # p-ada1 has no record in org-b
    error_of(look(api, org, "zz", "ada"), 404, "not_found")


# ------------------------------------------------------------------ signals


def sheep_signals(api: Api, org: Org, uid: str, **query: Any) -> Any:
    return api.get(f"/segments/v2/{org.bucket}/segment/{uid}/signals", bearer=org.key, query=query)


def test_signals_are_minervas_in_sheepcrms_time_format_with_the_same_cursors(api: Api, org: Org, signals: Any) -> None:
    segment_id = create_segment(api, org.key, "Watched")
    uid = uuid.UUID(segment_id).hex
    pids = ["p-sig1", "p-sig2", "p-sig3"]
    add(api, org.key, segment_id, *pids)
    for i, pid in enumerate(pids):
        ingest(person_event("death", pid, observed_at=f"2024-01-1{i}T10:30:45.123456Z"))
    ingest(person_event("job_change", "p-sig1"))
    minerva = api.get("/v2/segments/signals/deaths", key=org.key, query={"segment_id": segment_id})
    assert minerva.status == 200, minerva.text
    resp = sheep_signals(api, org, uid, type="death")
    assert resp.status == 200, resp.text
    body = resp.json
    assert (body["segment"], body["type"], body["next_cursor"]) == (f"/{org.bucket}/segment/{uid}/", "death", None)
    assert [r["minerva_pid"] for r in body["results"]] == ["p-sig3", "p-sig2", "p-sig1"]  # newest first
    first = body["results"][0]
    assert first["first_observed_at"] == "2024-01-12T10:30:45.123456"  # no zone: SheepCRM's time format
    assert first["uri"] == f"/{org.bucket}/person/p-sig3/"
    expected = [{**m, "first_observed_at": m["first_observed_at"].removesuffix("Z")} for m in minerva.json["results"]]
    assert [{k: v for k, v in r.items() if k != "uri"} for r in body["results"]] == expected
    jobs = sheep_signals(api, org, uid, type="job_change").json["results"]
    assert [(j["minerva_pid"], j["new_employer"]) for j in jobs] == [("p-sig1", "Globex")]

    # paging: one a page, by the cursor; a Minerva cursor serves here too (the same cursors)
    seen, cursor = [], None
    for _ in range(5):
        page = sheep_signals(api, org, uid, type="death", limit=1, **({"cursor": cursor} if cursor else {})).json
        seen += [r["minerva_pid"] for r in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p-sig3", "p-sig2", "p-sig1"]
    mcursor = api.get("/v2/segments/signals/deaths", key=org.key, query={"segment_id": segment_id, "limit": 1})
    resp = sheep_signals(api, org, uid, type="death", cursor=mcursor.json["next_cursor"])
    assert [r["minerva_pid"] for r in resp.json["results"]] == ["p-sig2", "p-sig1"]
    since = sheep_signals(api, org, uid, type="death", since="2024-01-11T00:00:00Z", until="2024-01-11T23:59:59Z")
    assert [r["minerva_pid"] for r in since.json["results"]] == ["p-sig2"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({}, "'type' is required"),
        ({"type": "deaths"}, "type"),
        ({"type": "birth"}, "type"),
        ({"type": "death", "cursor": "bogus"}, "cursor"),
        ({"type": "death", "since": "yesterday"}, "since"),
        ({"type": "death", "since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "since"),
        ({"type": "death", "limit": 1001}, "limit"),
    ],
)
def test_signals_refuse_bad_parameters_in_sheepcrms_error_shape(
    api: Api, org: Org, signals: Any, query: dict[str, Any], needle: str
) -> None:
    uid = uuid.UUID(create_segment(api, org.key, "Watched")).hex
    body = error_of(sheep_signals(api, org, uid, **query), 400, "validation_error")
    assert needle in body["description"].lower(), body


def test_signals_of_another_orgs_segment_are_not_found(api: Api, org: Org, other_org: Org, signals: Any) -> None:
    segment_id = create_segment(api, org.key, "Watched")
    add(api, org.key, segment_id, "p-sig1")
    ingest(person_event("death", "p-sig1"))
    uid = uuid.UUID(segment_id).hex
    assert len(sheep_signals(api, org, uid, type="death").json["results"]) == 1
    error_of(sheep_signals(api, other_org, uid, type="death"), 404, "not_found")
    resp = api.get(f"/segments/v2/{org.bucket}/segment/{uid}/signals", bearer=other_org.key, query={"type": "death"})
    error_of(resp, 403, "permission_denied")


# ------------------------------------------------------------------ replace, notifications


def test_replace_answers_501_in_the_vendors_error_shape(api: Api, org: Org, other_org: Org) -> None:
    seg = sheep_create(api, org, "Replaced")
    path = f"/segments/v2/{org.bucket}/segment/{seg['uid']}/action/replace"
    body = error_of(api.post(path, bearer=org.key, query={"batch_size": 10}), 501, "not_implemented")
    assert "replace" in body["description"]
    error_of(
        api.post(f"/segments/v2/{org.bucket}/segment/{uuid.uuid4().hex}/action/replace", bearer=org.key),
        404,
        "not_found",
    )
    error_of(api.post(path, bearer=other_org.key), 403, "permission_denied")
    path = f"/segments/v2/{other_org.bucket}/segment/{seg['uid']}/action/replace"
    error_of(api.post(path, bearer=other_org.key), 404, "not_found")


def test_an_unknown_or_malformed_notification_is_404(api: Api, org: Org) -> None:
    for uid in (uuid.uuid4().hex, "nope"):
        body = error_of(api.get(f"/segments/v2/{org.bucket}/notification/{uid}", bearer=org.key), 404, "not_found")
        assert body["description"] == "No such notification in this bucket"


def test_lookup_matches_the_configs_search_fields_only(api: Api, org: Org) -> None:
    people.put(org.org_id, "p-t1", {"title": "Adamant officer", "employer": "Ada Corp"})
    people.put(org.org_id, "p-t2", {"email": "adam@example.org"})
    seg = sheep_create(api, org, "Titles")
    members(api, org, seg["uid"], "p-t1", "p-t2")
    search = api.get(f"/segments/v2/{org.bucket}/segment/{seg['uid']}/config", bearer=org.key).json["mapping"]
    assert "title" not in search["search_fields"] and "employer" not in search["search_fields"]
    resp = look(api, org, seg["uid"], "adam")
    assert found(resp) == ["p-t2"]  # the email matches; the title and employer are not searched
    assert resp.json[0]["display_value"] == "adam@example.org"
