"""A segment's fieldset chooses the merge fields of its Mailchimp sync: `fieldset_id` set on create and
update on both surfaces, validated (another org's or an unknown fieldset is 404 in the surface's
error shape; null clears it), rendered by both, and read by the sync (a deleted fieldset: the
defaults). The assertions are on the local Mailchimp server's contacts."""

from __future__ import annotations

import uuid

import pytest
from helpers.assertions import assert_error
from helpers.mailchimp import Sync, mailchimp_fixture, set_credentials  # noqa: F401 - the `mailchimp` fixture
from helpers.signals import add, signals_fixture  # noqa: F401 - the `signals` fixture
from helpers.vendor_schema import validate_vendor, validate_vendor_error

from conftest import Api, make_org
from segments.store import people

FIELDS = ["first_name", "address.city", "company_name", "membership_number"]
# first_name: the audience's FNAME; otherwise the path's last part in capitals, letters and digits
# only, at most 10 characters
TAGS = {"FNAME": "Ada", "CITY": "London", "COMPANYNAM": "Analytical Engines", "MEMBERSHIP": "42"}


@pytest.fixture
def org_a(mailchimp: Sync) -> str:
    org = make_org("org-a", "org-a")
    set_credentials(org.org_id, "aud-a")
    people.put(
        org.org_id,
        "p-1",
        {
            "email": "ada@example.org",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address": {"city": "London", "line1": "St James's Square"},
            "company_name": "Analytical Engines",
            "membership_number": 42,
        },
    )
    return org.key


def fieldset(api: Api, key: str, bucket: str = "org-a", fields: list[str] = FIELDS) -> str:
    made = api.post(f"/segments/v2/{bucket}/fieldset", bearer=key, body={"name": "Mailing", "fields": fields})
    assert made.status == 201, made.text
    return str(made.json["uid"])


def minerva_segment(api: Api, key: str, name: str, **extra: object) -> str:
    made = api.post("/v2/segments/create", key=key, body={"name": name, "mailchimp_sync": True, **extra})
    assert made.status == 200, made.text
    return str(made.json["segment_id"])


def test_a_segment_with_a_fieldset_sends_its_fields_as_merge_fields(mailchimp: Sync, api: Api, org_a: str) -> None:
    fs = fieldset(api, org_a)
    seg = minerva_segment(api, org_a, "Mailing", fieldset_id=fs)
    assert api.get(f"/v2/segments/{seg}", key=org_a).json["fieldset_id"] == fs
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Mailing") == {"ada@example.org"}
    contact = mailchimp.server.contact("aud-a", "ada@example.org")
    assert contact and contact["merge_fields"] == TAGS  # no LNAME: the fieldset has no last_name


def test_a_segment_without_a_fieldset_sends_the_defaults(mailchimp: Sync, api: Api, org_a: str) -> None:
    seg = minerva_segment(api, org_a, "Plain")
    assert "fieldset_id" not in api.get(f"/v2/segments/{seg}", key=org_a).json
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    contact = mailchimp.server.contact("aud-a", "ada@example.org")
    assert contact and contact["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace"}


def test_a_deleted_fieldset_falls_back_to_the_defaults(
    mailchimp: Sync, api: Api, org_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = fieldset(api, org_a)
    seg = minerva_segment(api, org_a, "Orphan", fieldset_id=fs)
    assert api.delete(f"/segments/v2/org-a/fieldset/{fs}", bearer=org_a).status == 200
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Orphan") == {"ada@example.org"}
    contact = mailchimp.server.contact("aud-a", "ada@example.org")
    assert contact and contact["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace"}
    gone = [r for r in caplog.records if "fieldset is gone" in r.getMessage()]
    assert [(r.levelname, getattr(r, "fieldset_id", None), getattr(r, "segment_id", None)) for r in gone] == [
        ("WARNING", fs, seg)
    ]
    # the segment still names it: sent back unchanged it is accepted, a fresh choice of it is not
    assert api.patch(f"/v2/segments/{seg}", key=org_a, body={"fieldset_id": fs}).status == 200
    fresh = minerva_segment(api, org_a, "Fresh")
    assert_error(api.patch(f"/v2/segments/{fresh}", key=org_a, body={"fieldset_id": fs}), 404)


def test_the_full_sync_route_uses_the_fieldset_set_on_sheepcrm(mailchimp: Sync, api: Api, org_a: str) -> None:
    fs = fieldset(api, org_a)
    made = api.post(
        "/segments/v2/org-a/create",
        bearer=org_a,
        body={"name": "Sheep mail", "resource_type": "person", "segment_type": "static", "fieldset_id": fs},
    )
    assert made.status == 201 and made.json["fieldset_id"] == fs, made.text
    validate_vendor("POST", "/segments/v2/{bucket}/create", 201, made.json)
    add(api, org_a, str(uuid.UUID(made.json["uid"])), "p-1")
    sync = api.get(f"/segments/v2/org-a/segment/{made.json['uid']}/all/sync_mailchimp", bearer=org_a)
    assert sync.status == 200, sync.text
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Sheep mail") == {"ada@example.org"}
    contact = mailchimp.server.contact("aud-a", "ada@example.org")
    assert contact and contact["merge_fields"] == TAGS


def test_minerva_refuses_an_unknown_or_foreign_fieldset_and_null_clears_it(api: Api, org_a: str) -> None:
    other = make_org("org-b", "org-b")
    foreign = fieldset(api, other.key, "org-b")
    for unknown in (uuid.uuid4().hex, foreign, "person", "not a uid"):
        created = api.post("/v2/segments/create", key=org_a, body={"name": f"X {unknown}", "fieldset_id": unknown})
        assert_error(created, 404, f"Fieldset {unknown} not found")
    assert api.get("/v2/segments", key=org_a).json["results"]["items"] == []  # nothing was made
    seg = minerva_segment(api, org_a, "Kept")
    assert_error(api.patch(f"/v2/segments/{seg}", key=org_a, body={"fieldset_id": foreign}), 404)
    fs = fieldset(api, org_a)
    patched = api.patch(f"/v2/segments/{seg}", key=org_a, body={"fieldset_id": fs})
    assert patched.status == 200 and patched.json["fieldset_id"] == fs, patched.text
    cleared = api.patch(f"/v2/segments/{seg}", key=org_a, body={"fieldset_id": None})
    assert cleared.status == 200 and "fieldset_id" not in cleared.json, cleared.text
    assert_error(api.post("/v2/segments/create", key=org_a, body={"name": "Y", "fieldset_id": 7}), 422)


def test_sheepcrm_refuses_an_unknown_fieldset_and_renders_the_one_set(api: Api, org_a: str) -> None:
    unknown = uuid.uuid4().hex
    body = {"name": "Refused", "resource_type": "person", "segment_type": "static", "fieldset_id": unknown}
    refused = api.post("/segments/v2/org-a/create", bearer=org_a, body=body)
    assert refused.status == 404 and f"Fieldset {unknown} not found" in refused.text, refused.text
    validate_vendor_error(refused.json)
    made = api.post("/segments/v2/org-a/create", bearer=org_a, body={**body, "name": "Sheep", "fieldset_id": None})
    assert made.status == 201 and made.json["fieldset_id"] == "", made.text
    path = f"/segments/v2/org-a/segment/{made.json['uid']}"
    put = api.request("PUT", path, bearer=org_a, body={"fieldset_id": unknown})
    assert put.status == 404 and f"Fieldset {unknown} not found" in put.text, put.text
    validate_vendor_error(put.json)
    fs = fieldset(api, org_a)
    chosen = api.request("PUT", path, bearer=org_a, body={"fieldset_id": fs})
    assert chosen.status == 200 and chosen.json["fieldset_id"] == fs, chosen.text
    listed = api.get("/segments/v2/org-a/all", bearer=org_a)
    validate_vendor("GET", "/segments/v2/{bucket}/all", 200, listed.json)
    [read] = listed.json["segments"]
    assert read["fieldset_id"] == fs
    whole = api.request("PUT", path, bearer=org_a, body=read)  # sent back whole: kept
    assert whole.status == 200 and whole.json["fieldset_id"] == fs, whole.text
    cleared = api.request("PUT", path, bearer=org_a, body={"fieldset_id": ""})
    assert cleared.status == 200 and cleared.json["fieldset_id"] == "", cleared.text
    assert api.get(f"/v2/segments/{uuid.UUID(made.json['uid'])}", key=org_a).json.get("fieldset_id") is None
