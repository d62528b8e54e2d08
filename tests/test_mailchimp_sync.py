"""Mailchimp audience sync, end to end over moto and a local Mailchimp server: members changed through
the API -> the table's stream -> PublisherFunction -> the bus -> MailchimpSyncRule -> MailchimpSyncQueue
-> MailchimpSyncFunction -> Mailchimp. The assertions are on the server's state: the static segment
holds exactly the current members' emails."""

from __future__ import annotations

import uuid

import pytest
from helpers.mailchimp import (  # noqa: F401 - the `mailchimp` fixture
    Sync,
    mailchimp_fixture,
    membership_event,
    set_credentials,
)
from helpers.signals import add, remove, signals_fixture  # noqa: F401 - the `signals` fixture

from conftest import Api, make_org
from segments.store import mailchimp as state_store
from segments.store import people


def person(org_id: str, pid: str, email: str | None = None, **attrs: str) -> None:
    people.put(org_id, pid, {**({"email": email} if email else {}), **attrs})


def synced_segment(api: Api, key: str, name: str) -> str:
    made = api.post("/v2/segments/create", key=key, body={"name": name, "mailchimp_sync": True})
    assert made.status == 200, made.text
    return str(made.json["segment_id"])


def emails(n: int, start: int = 0) -> set[str]:
    return {f"p{i}@example.org" for i in range(start, start + n)}


@pytest.fixture
def org_a(mailchimp: Sync) -> str:
    org = make_org("org-a", "org-a")
    set_credentials(org.org_id, "aud-a")
    for i in range(12):
        person(org.org_id, f"p-{i}", f"P{i}@example.org", first_name=f"Ada{i}", last_name="Lovelace")
    person(org.org_id, "p-noemail", None, first_name="Nobody")
    return org.key


def test_adds_and_removals_leave_exactly_the_current_members(mailchimp: Sync, api: Api, org_a: str) -> None:
    seg = synced_segment(api, org_a, "Donors")
    add(api, org_a, seg, *[f"p-{i}" for i in range(6)], "p-noemail")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Donors") == emails(6)
    contact = mailchimp.server.contact("aud-a", "p0@example.org")
    assert contact and contact["merge_fields"] == {"FNAME": "Ada0", "LNAME": "Lovelace"}
    assert contact["status"] == "transactional"  # the org's status for new contacts

    remove(api, org_a, seg, "p-1", "p-2")
    add(api, org_a, seg, "p-7")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Donors") == emails(6) - emails(2, 1) | {"p7@example.org"}
    assert mailchimp.server.segments_named("aud-a", "Donors") == 1
    state = state_store.get_state("org-a", seg)
    assert state["last_sync"]["without_email"] == 1 and state["last_error"] is None


def test_a_burst_of_changes_is_one_sync(mailchimp: Sync, api: Api, org_a: str) -> None:
    seg = synced_segment(api, org_a, "Burst")
    for i in range(8):  # eight requests, eight ledger entries, eight events
        add(api, org_a, seg, f"p-{i}")
    remove(api, org_a, seg, "p-3")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Burst") == emails(8) - {"p3@example.org"}
    assert mailchimp.calls("POST", r"/lists/aud-a/segments/\d+") == 1  # one sync: one segment call
    assert mailchimp.calls("POST", "/lists/aud-a") == 1  # and one batch subscribe


def test_a_segment_without_mailchimp_sync_is_left_alone(mailchimp: Sync, api: Api, org_a: str) -> None:
    made = api.post("/v2/segments/create", key=org_a, body={"name": "Quiet"})
    seg = made.json["segment_id"]
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert mailchimp.server.requests == []
    # turned on by PATCH: the next change syncs every member (the first sync reads the whole ledger)
    patched = api.patch(f"/v2/segments/{seg}", key=org_a, body={"mailchimp_sync": True})
    assert patched.status == 200 and patched.json["mailchimp_sync"] is True, patched.text
    add(api, org_a, seg, "p-2")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Quiet") == {"p1@example.org", "p2@example.org"}
    assert api.patch(f"/v2/segments/{seg}", key=org_a, body={"mailchimp_sync": None}).status == 422


@pytest.mark.parametrize("status", [429, 500, 503])
def test_mailchimp_answering_429_or_5xx_is_retried_with_backoff(
    mailchimp: Sync, api: Api, org_a: str, status: int
) -> None:
    seg = synced_segment(api, org_a, "Flaky")
    add(api, org_a, seg, "p-1", "p-2")
    mailchimp.server.fail(status, times=3)
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Flaky") == {"p1@example.org", "p2@example.org"}
    assert len(mailchimp.sleeps) == 3


def test_mailchimp_down_for_good_fails_the_message_and_a_later_sync_catches_up(
    mailchimp: Sync, api: Api, org_a: str
) -> None:
    seg = synced_segment(api, org_a, "Down")
    add(api, org_a, seg, "p-1")
    mailchimp.signals.publish()
    [event] = mailchimp.messages()
    assert mailchimp.deliver([event]) == []  # scheduled
    [scheduled] = mailchimp.messages()
    mailchimp.server.fail(500, times=6)  # every attempt of one call
    assert len(mailchimp.deliver([scheduled])) == 1  # the queue redelivers it (the DLQ after 5)
    assert mailchimp.deliver([scheduled]) == []
    assert mailchimp.server.segment_members("aud-a", "Down") == {"p1@example.org"}


def test_a_second_org_syncs_to_its_own_audience_with_its_own_key(mailchimp: Sync, api: Api, org_a: str) -> None:
    org_b = make_org("org-b", "org-b")
    set_credentials(org_b.org_id, "aud-b", status_if_new="subscribed")
    person(org_b.org_id, "p-1", "b1@example.org")
    seg_a = synced_segment(api, org_a, "Members")
    seg_b = synced_segment(api, org_b.key, "Members")
    add(api, org_a, seg_a, "p-1")
    add(api, org_b.key, seg_b, "p-1")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Members") == {"p1@example.org"}
    assert mailchimp.server.segment_members("aud-b", "Members") == {"b1@example.org"}
    contact = mailchimp.server.contact("aud-b", "b1@example.org")
    assert contact and contact["status"] == "subscribed"


def test_an_org_without_credentials_or_with_a_refused_key_is_recorded_not_retried(
    mailchimp: Sync, api: Api, org_a: str
) -> None:
    org_c = make_org("org-c", "org-c")
    person(org_c.org_id, "p-1", "c1@example.org")
    seg = synced_segment(api, org_c.key, "Nowhere")
    add(api, org_c.key, seg, "p-1")
    mailchimp.settle()
    assert "set-mailchimp" in state_store.get_state("org-c", seg)["last_error"]

    from segments.mailchimp import credentials

    credentials.save("org-c", credentials.Credentials("wrong-us6", "aud-a"))
    add(api, org_c.key, seg, "p-1")  # nothing new: the event still schedules a sync
    assert mailchimp.deliver([membership_event("org-c", seg)]) == []
    assert mailchimp.deliver(mailchimp.messages()) == []  # 401: recorded, not retried
    assert "refused" in state_store.get_state("org-c", seg)["last_error"]


def test_the_full_sync_route_answers_the_receipt_and_repairs_the_audience(
    mailchimp: Sync, api: Api, org_a: str
) -> None:
    from helpers.vendor_schema import validate_vendor

    seg = synced_segment(api, org_a, "Full")
    add(api, org_a, seg, *[f"p-{i}" for i in range(5)])
    mailchimp.settle()
    # someone tags two other contacts by hand in Mailchimp; the full sync takes them out again
    mailchimp.server.audiences["aud-a"].members["stray@example.org"] = {"email_address": "stray@example.org"}
    [mc] = [s for s in mailchimp.server.audiences["aud-a"].segments.values() if s["name"] == "Full"]
    mc["members"] |= {"stray@example.org"}
    mc["members"].discard("p0@example.org")

    uid = uuid.UUID(seg).hex
    path = f"/segments/v2/org-a/segment/{uid}/all/sync_mailchimp"
    answered = api.get(path, bearer=org_a, query={"mailchimp_batch_size": "2", "verbose": "true"})
    assert answered.status == 200, answered.text
    receipt = answered.json
    validate_vendor("get", "/segments/v2/{bucket}/segment/{uid}/all/sync_mailchimp", 200, receipt)
    assert receipt["segment_uri"] == f"/org-a/segment/{uid}/" and receipt["mailchimp_batch_size"] == 2
    assert receipt["segment_name"] == "Full" and receipt["verbose"] is True
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Full") == emails(5)
    job = receipt["journal_uri"].split("/")[3]
    note = api.get(f"/segments/v2/org-a/notification/{job}", bearer=org_a)
    assert note.status == 200 and note.json["status"] == "done", note.text
    assert note.json["action"] == "sync_mailchimp" and "1 removed" in note.json["message"]
    assert len(note.json["recent"]) >= 3  # batches of 2

    assert api.get(path, bearer=org_a, query={"mailchimp_batch_size": "501"}).status == 400
    assert api.get(path, bearer=org_a, query={"verbose": "maybe"}).status == 400
    missing = f"/segments/v2/org-a/segment/{uuid.uuid4().hex}/all/sync_mailchimp"
    assert api.get(missing, bearer=org_a).status == 404


def test_the_position_advances_over_settled_entries_only(
    mailchimp: Sync, api: Api, org_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from segments.timefmt import now
    from segments.usecases import mailchimp_sync

    seg = synced_segment(api, org_a, "Later")
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert "position" not in state_store.get_state("org-a", seg)  # the entry is younger than the lease
    monkeypatch.setattr(mailchimp_sync, "now", lambda: now() + timedelta(minutes=5))
    add(api, org_a, seg, "p-2")
    mailchimp.settle()
    position = state_store.get_state("org-a", seg)["position"]
    assert position.startswith("LOG#")
    before = mailchimp.calls("POST", "/lists/aud-a")
    remove(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert mailchimp.calls("POST", "/lists/aud-a") == before  # only the removal: nothing to subscribe
    assert mailchimp.server.segment_members("aud-a", "Later") == {"p2@example.org"}


def test_set_mailchimp_stores_the_credentials_as_a_secret_never_in_the_table_nor_printed(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from segments.cli.admin import main
    from segments.mailchimp import credentials

    assert main(["set-mailchimp", "--org", "org-s", "--api-key", "secret123-us6", "--audience-id", "aud-s"]) == 0
    assert (
        main(["--json", "set-mailchimp", "--org", "org-s", "--api-key", "secret456-us6", "--audience-id", "aud-t"]) == 0
    )
    out = capsys.readouterr()
    assert "secret123" not in out.out + out.err and "secret456" not in out.out + out.err
    assert "https://us6.api.mailchimp.com/3.0" in out.out and "segments/mailchimp/org-s" in out.out
    stored = credentials.load("org-s")
    assert stored and (stored.api_key, stored.audience_id, stored.status_if_new) == (
        "secret456-us6",
        "aud-t",
        "transactional",
    )
    assert "secret456" not in repr(stored)
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="SegmentsTable")["Items"]
    assert "secret" not in str(items)
    assert main(["set-mailchimp", "--org", "org-s", "--api-key", "nodatacentre", "--audience-id", "a"]) == 2
    assert "data centre" in capsys.readouterr().err
    assert main(["set-mailchimp", "--org", "bad org", "--api-key", "k-us1", "--audience-id", "a"]) == 2


def test_the_base_url_comes_from_the_key_unless_mailchimp_base_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from segments import aws
    from segments.mailchimp.credentials import Credentials

    assert Credentials("abc-us6", "a").base_url == "https://us6.api.mailchimp.com/3.0"
    assert Credentials("abc-us21", "a").base_url == "https://us21.api.mailchimp.com/3.0"
    monkeypatch.setenv("MAILCHIMP_BASE_URL", "http://127.0.0.1:8090/3.0/")
    aws.reset()
    assert Credentials("abc-us6", "a").base_url == "http://127.0.0.1:8090/3.0"


def test_sheepcrm_create_and_update_turn_the_sync_on_and_off(mailchimp: Sync, api: Api, org_a: str) -> None:
    made = api.post(
        "/segments/v2/org-a/create",
        bearer=org_a,
        body={"name": "Sheep list", "resource_type": "person", "segment_type": "static", "mailchimp_sync": True},
    )
    assert made.status == 201 and made.json["mailchimp_sync"] is True, made.text
    seg = str(uuid.UUID(made.json["uid"]))
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Sheep list") == {"p1@example.org"}
    path = f"/segments/v2/org-a/segment/{made.json['uid']}"
    assert api.request("PUT", path, bearer=org_a, body={"mailchimp_sync": False}).status == 200
    add(api, org_a, seg, "p-2")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Sheep list") == {"p1@example.org"}  # off: not synced
    assert api.request("PUT", path, bearer=org_a, body={"mailchimp_sync": True, "name": "Sheep letter"}).status == 200
    add(api, org_a, seg, "p-3")
    mailchimp.settle()  # on again, renamed: the static segment is renamed, and the whole ledger is read
    assert mailchimp.server.segment_members("aud-a", "Sheep letter") == emails(3, 1)
    assert mailchimp.server.segments_named("aud-a", "Sheep list") == 0


def test_a_static_segment_deleted_in_mailchimp_is_made_again(mailchimp: Sync, api: Api, org_a: str) -> None:
    seg = synced_segment(api, org_a, "Fragile")
    add(api, org_a, seg, "p-1")
    mailchimp.settle()
    audience = mailchimp.server.audiences["aud-a"]
    [gone] = [k for k, s in audience.segments.items() if s["name"] == "Fragile"]
    del audience.segments[gone]  # someone deletes the tag in Mailchimp
    add(api, org_a, seg, "p-2")
    mailchimp.settle()
    assert mailchimp.server.segment_members("aud-a", "Fragile") == {"p1@example.org", "p2@example.org"}
    assert state_store.get_state("org-a", seg)["mailchimp_segment_id"] != gone


def test_an_unknown_audience_is_recorded_not_retried(mailchimp: Sync, api: Api, org_a: str) -> None:
    from segments.mailchimp import credentials

    credentials.save("org-a", credentials.Credentials("key-a-us6", "no-such-audience"))
    seg = synced_segment(api, org_a, "Lost")
    add(api, org_a, seg, "p-1")
    mailchimp.settle()  # fails the test if a message fails
    assert "refused" in state_store.get_state("org-a", seg)["last_error"]


def test_a_full_sync_mailchimp_keeps_refusing_stops_with_the_reason(mailchimp: Sync, api: Api, org_a: str) -> None:
    from helpers.signals import failures, run, sqs_batch, sqs_record

    seg = synced_segment(api, org_a, "Stubborn")
    uid = uuid.UUID(seg).hex
    receipt = api.get(f"/segments/v2/org-a/segment/{uid}/all/sync_mailchimp", bearer=org_a).json
    [body] = mailchimp.messages()
    mailchimp.server.fail(503, times=6 * 5)
    for receive in range(1, 5):
        assert len(failures(run("MailchimpSyncFunction", sqs_batch([sqs_record(body, receive_count=receive)])))) == 1
    assert failures(run("MailchimpSyncFunction", sqs_batch([sqs_record(body, receive_count=5)]))) == []
    note = api.get(f"/segments/v2/org-a/notification/{receipt['journal_uri'].split('/')[3]}", bearer=org_a).json
    assert note["status"] == "stopped" and "did not answer" in note["message"]
