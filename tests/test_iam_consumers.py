"""IAM of the queue and stream consumers and the jobs (events in, rule segments, bulk deletes,
exports, Mailchimp syncs, the stream dispatcher): every AWS call each makes is allowed by its policy
in template.yaml (the checker: tests/helpers/iam.py; the routes: tests/test_iam.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.bulk import Bulk, bulk_fixture, bulk_queue_fixture  # noqa: F401 - the `bulk`, `bulk_queue` fixtures
from helpers.exports import Exports, export_queue_fixture, exports_fixture  # noqa: F401 - `export_queue`, `exports`
from helpers.faults import inject
from helpers.iam import (  # noqa: F401 - the `recorder` fixture
    Recorder,
    allowed,
    policy_statements,
    recorder_fixture,
)
from helpers.mailchimp import Sync, mailchimp_fixture, membership_event, set_credentials  # noqa: F401 - `mailchimp`
from helpers.rules import Rig, members_of, rig_fixture, sheep_segment  # noqa: F401 - the `rig` fixture
from helpers.signals import (
    DATA,
    Signals,
    add,
    create_segment,
    failures,
    ingest,
    person_event,
    remove,
    signals_fixture,  # noqa: F401 - the `signals` fixture
    sqs_batch,
    sqs_record,
)

from conftest import Api, functions, make_org, template
from segments import aws, errors, queues, store
from segments.models import Actor
from segments.store import people
from segments.usecases import members


def test_every_aws_call_of_the_event_consumers_is_allowed_by_the_functions_policy(
    recorder: Recorder, signals: Signals, api: Api
) -> None:
    """The queue consumer and the two stream consumers, on the events they really get: each person
    event type, a duplicate, a late joiner and a removal (feed reconciliation), then publishing."""
    org = make_org("org-a", "org-a")
    pid, late = "p-a1b2c3d4e5f6", "p-late01"
    segment_id = create_segment(api, org.key, "Watched")
    add(api, org.key, segment_id, pid)
    events = [person_event(kind, pid) for kind in DATA] + [person_event(kind, late) for kind in DATA]
    profile = person_event("profile", pid, org_id=org.org_id, data={"attributes": {"tier": "gold"}})
    records = [sqs_record(e) for e in [*events, events[0], profile]]
    assert failures(functions().invoke("SignalsIngestFunction", sqs_batch(records))) == []
    add(api, org.key, segment_id, late)  # a late joiner: its signals are copied by the feed function
    remove(api, org.key, segment_id, pid)  # a removal: its feed entries are deleted
    paused = create_segment(api, org.key, "Paused")  # a signal held while deleted, fed on its restore
    add(api, org.key, paused, late)
    assert api.delete(f"/v2/segments/{paused}", key=org.key).status == 200
    assert (
        failures(functions().invoke("SignalsIngestFunction", sqs_batch([sqs_record(person_event("death", late))])))
        == []
    )
    older = {**profile, "event_id": "evt-older", "observed_at": "2020-01-01T00:00:00Z"}  # ignored as older
    assert failures(functions().invoke("SignalsIngestFunction", sqs_batch([sqs_record(older)]))) == []
    assert (
        api.post(f"/segments/v2/{org.bucket}/segment/{paused.replace('-', '')}/restore", bearer=org.key).status == 200
    )
    batch = signals.stream_batch()
    assert failures(functions().invoke("SignalFeedFunction", {"Records": batch})) == []
    batch += signals.stream_batch()
    assert failures(functions().invoke("PublisherFunction", {"Records": batch})) == []
    ran = {c.function for c in recorder.calls}
    assert ran >= {"SignalsIngestFunction", "SignalFeedFunction", "PublisherFunction"}, ran
    assert any(c.action == "events:PutEvents" for c in recorder.calls)
    assert ("SignalsIngestFunction", "dynamodb:ConditionCheckItem") in {(c.function, c.action) for c in recorder.calls}
    assert ("SignalFeedFunction", "dynamodb:GetItem") in {(c.function, c.action) for c in recorder.calls}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_the_rule_segment_consumers_is_allowed_by_the_functions_policy(
    recorder: Recorder, rig: Rig, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RuleMembershipFunction (person records and segment definitions from the stream) and
    RebuildFunction (chunks, a redelivered chunk, a superseded and a deleted segment's messages):
    dynamic, hybrid and static segments, person records created and changed, members added and
    removed by rule, under PID_VALIDATION=registry."""
    monkeypatch.setenv("REBUILD_CHUNK_SIZE", "3")
    monkeypatch.setenv("PID_VALIDATION", "registry")
    store.reset()
    org = make_org("org-a", "org-a")
    gold = [{"field": "tier", "operator": "equals", "value": "gold"}]
    for i in range(7):
        people.put(org.org_id, f"p-i{i}", {"tier": "gold" if i % 2 else "silver"})
    dynamic = sheep_segment(api, org, "Gold", rules=gold)
    hybrid = sheep_segment(api, org, "Hybrid", segment_type="hybrid", rules=gold, include=["p-i0"], exclude=["p-i1"])
    sheep_segment(api, org, "Static", segment_type="static", include=["p-i2"])
    # not gold: the rebuild removes it (written as the rules engine writes: dynamic segments take no members by hand)
    members.add_members(
        Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_" + "2" * 32, reason="rule"), dynamic, ["p-i2"]
    )

    def settle(*, redeliver_first: bool = False) -> None:
        for _ in range(100):
            records = rig.stream()
            if records:
                assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
            bodies = rig.messages()
            for body in bodies:
                assert failures(functions().invoke("RebuildFunction", sqs_batch([sqs_record(body)]))) == []
                if redeliver_first:
                    redeliver_first = False
                    again = sqs_batch([sqs_record(body, receive_count=2)])
                    assert failures(functions().invoke("RebuildFunction", again)) == []
            if not records and not bodies:
                return
        raise AssertionError("did not settle")

    settle(redeliver_first=True)
    for i, tier in ((2, "gold"), (3, "silver"), (9, "gold")):
        ingest(
            person_event(
                "profile",
                f"p-i{i}",
                org_id=org.org_id,
                observed_at=f"2024-02-01T00:00:0{i}.000000Z",
                data={"attributes": {"tier": tier}},
            )
        )
    settle()
    assert "p-i9" in members_of(api, org, dynamic) and "p-i3" not in members_of(api, org, dynamic)
    # a crash between the member writes and the lease commit: the retried record takes the dirty
    # lease and recounts (a Query), and the ledger of the dead attempt is read (a Query)
    ingest(
        person_event(
            "profile",
            "p-i4",
            org_id=org.org_id,
            observed_at="2024-02-01T00:00:10.000000Z",
            data={"attributes": {"tier": "gold"}},
        )
    )
    records = rig.stream()
    is_commit = lambda request: "current_size" in request.get("UpdateExpression", "")  # noqa: E731
    with inject("UpdateItem", "ValidationException", when=is_commit, times=1) as crash:
        assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) != []
    assert crash.hits == 1
    queried = {c for c in recorder.calls if (c.function, c.action) == ("RuleMembershipFunction", "dynamodb:Query")}
    recorder.calls -= queried  # only the retry's own calls count below
    assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
    assert "p-i4" in members_of(api, org, dynamic)
    assert any(c.function == "RuleMembershipFunction" and c.action == "dynamodb:Query" for c in recorder.calls)
    assert api.delete(f"/v2/segments/{hybrid}", key=org.key).status == 200
    settle()
    ran = {c.function for c in recorder.calls}
    assert ran >= {"RuleMembershipFunction", "RebuildFunction"}, ran
    assert any(c.function == "RuleMembershipFunction" and c.action == "sqs:SendMessage" for c in recorder.calls)
    assert any(c.function == "RebuildFunction" and c.action == "sqs:SendMessage" for c in recorder.calls)
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("RuleMembershipFunction", "RebuildFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_a_bulk_delete_is_allowed_by_the_functions_policy(
    recorder: Recorder, bulk: Bulk, api: Api
) -> None:
    """BulkDeleteFunction (chunks, a redelivered chunk, a stray copy) and RuleMembershipFunction on the
    person-record REMOVEs it causes (a dynamic and a hybrid member leave)."""
    org = make_org("org-a", "org-a")
    gold = [{"field": "tier", "operator": "equals", "value": "gold"}]
    pids = [f"p-b{i}" for i in range(5)]
    for pid in pids:
        people.put(org.org_id, pid, {"tier": "gold"})
    static = sheep_segment(api, org, "Static", segment_type="static")
    assert (
        api.post("/v2/segments/members/add", key=org.key, body={"segment_id": static, "minerva_pids": pids}).status
        == 200
    )
    dynamic = sheep_segment(api, org, "Gold", rules=gold)
    sheep_segment(api, org, "Hybrid", segment_type="hybrid", rules=gold, include=["p-b0"])
    bulk.rig.settle()
    path = f"/segments/v2/{org.bucket}/segment/{uuid.UUID(static).hex}/action/delete"
    real_send = queues.send

    def refuse(*a: Any, **k: Any) -> None:
        raise errors.Retryable("The queue refused the message")

    queues.send = refuse  # type: ignore[assignment]  # the route records the job stopped (UpdateItem)
    try:
        assert api.post(path, bearer=org.key).status == 503
    finally:
        queues.send = real_send  # type: ignore[assignment]
    started = api.post(path, bearer=org.key, query={"batch_size": 2})
    assert started.status == 200, started.text
    first = bulk.messages()[0]
    assert failures(functions().invoke("BulkDeleteFunction", sqs_batch([sqs_record(first)]))) == []
    again = sqs_batch([sqs_record(first, receive_count=2)])
    assert failures(functions().invoke("BulkDeleteFunction", again)) == []  # recorded: sends the next again
    for _ in range(20):
        bodies = bulk.messages()
        if not bodies:
            break
        for body in bodies:
            assert failures(functions().invoke("BulkDeleteFunction", sqs_batch([sqs_record(body)]))) == []
    records = bulk.rig.stream()
    assert failures(functions().invoke("RuleMembershipFunction", {"Records": records})) == []
    assert members_of(api, org, dynamic) == []
    ran = {c.function for c in recorder.calls}
    assert ran >= {"BulkDeleteFunction", "RuleMembershipFunction"}, ran
    assert any(c.function == "BulkDeleteFunction" and c.action == "dynamodb:BatchWriteItem" for c in recorder.calls)
    assert any(c.function == "SheepActionsFunction" and c.action == "dynamodb:UpdateItem" for c in recorder.calls)
    assert any(c.function == "RuleMembershipFunction" and c.resource.endswith("/index/gsi3") for c in recorder.calls)
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("BulkDeleteFunction", "RuleMembershipFunction", "SheepActionsFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_an_export_is_allowed_by_the_functions_policy(
    recorder: Recorder, exports: Exports, api: Api
) -> None:
    """ExportFunction: a CSV in several parts (a redelivered chunk, a stray copy), an XLSX and a PDF, a
    job failed (its upload aborted); the publisher on the finished jobs."""
    org = make_org("org-a", "org-a")
    segment = api.post("/v2/segments/create", key=org.key, body={"name": "Out"}).json["segment_id"]
    pids = [f"p-e{i:03d}" for i in range(30)]
    assert (
        api.post("/v2/segments/members/add", key=org.key, body={"segment_id": segment, "minerva_pids": pids}).status
        == 200
    )
    for pid in pids:
        people.put(org.org_id, pid, {"first_name": "Ada"})
    started = []
    for fmt in ("csv", "xlsx"):
        body = {"segment_id": segment, "format": fmt, "fields": ["first_name"]}
        started.append(api.post("/v2/segments/exports", key=org.key, body=body).json["export_id"])
    uid = uuid.UUID(segment).hex
    assert api.get(f"/segments/v2/{org.bucket}/segment/{uid}/all/pdf", bearer=org.key).status == 200
    first = exports.messages()
    for body in first:
        assert failures(functions().invoke("ExportFunction", sqs_batch([sqs_record(body)]))) == []
        again = sqs_batch([sqs_record(body, receive_count=2)])
        assert failures(functions().invoke("ExportFunction", again)) == []  # recorded: sends the next again
    exports.run_jobs()
    assert api.get(f"/v2/segments/exports/{started[0]}", key=org.key).json["url"]  # presigned by the API function
    pdf = api.get(f"/segments/v2/{org.bucket}/segment/{uid}/all/pdf", bearer=org.key).json["journal_uri"].split("/")[3]
    exports.run_jobs()
    assert api.get(f"/segments/v2/{org.bucket}/journal/{pdf}", bearer=org.key).json["url"]
    doomed = api.post("/v2/segments/exports", key=org.key, body={"segment_id": segment, "format": "csv"}).json
    assert exports.chunk(exports.messages()[0]) == []  # its first part is uploaded
    assert api.delete(f"/v2/segments/{segment}", key=org.key).status == 200
    exports.run_jobs()  # the segment is gone: the job fails and its upload is aborted
    assert api.get(f"/v2/segments/exports/{doomed['export_id']}", key=org.key).json["status"] == "failed"
    assert failures(functions().invoke("PublisherFunction", {"Records": exports.signals.stream_batch()})) == []
    assert {(c.function, c.action) for c in recorder.calls} >= {
        ("ExportsApiFunction", "s3:GetObject"),  # a presigned URL needs the right of the call it stands for
        ("SheepExportsFunction", "s3:GetObject"),
    }
    actions = {c.action for c in recorder.calls if c.function == "ExportFunction"}
    assert actions >= {"s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload", "sqs:SendMessage"}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function in ("ExportFunction", "ExportsApiFunction", "SheepExportsFunction", "PublisherFunction")
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_a_mailchimp_sync_is_allowed_by_the_functions_policy(
    recorder: Recorder, mailchimp: Sync, api: Api
) -> None:
    """MailchimpSyncFunction on a membership change (schedules), the sync it schedules (the secret,
    the ledger, memberships, person records, the state), and a full sync queued by the route."""
    org = make_org("org-a", "org-a")
    set_credentials(org.org_id, "aud-a")
    people.put(org.org_id, "p-1", {"email": "p1@example.org"})
    fieldset = api.post(f"/segments/v2/{org.bucket}/fieldset", bearer=org.key, body={"fields": ["first_name"]})
    assert fieldset.status == 201, fieldset.text
    body = {"name": "Synced", "mailchimp_sync": True, "fieldset_id": fieldset.json["uid"]}  # read by the sync
    made = api.post("/v2/segments/create", key=org.key, body=body)
    segment_id = made.json["segment_id"]
    add(api, org.key, segment_id, "p-1", "p-2")
    assert (
        failures(
            functions().invoke(
                "MailchimpSyncFunction", sqs_batch([sqs_record(membership_event(org.org_id, segment_id))])
            )
        )
        == []
    )
    path = f"/segments/v2/{org.bucket}/segment/{uuid.UUID(segment_id).hex}/all/sync_mailchimp"
    assert api.get(path, bearer=org.key).status == 200
    bodies = mailchimp.messages()
    assert len(bodies) == 2  # the scheduled sync, the full sync
    assert failures(functions().invoke("MailchimpSyncFunction", sqs_batch([sqs_record(b) for b in bodies]))) == []
    assert mailchimp.server.segment_members("aud-a", "Synced") == {"p1@example.org"}
    mine = [c for c in recorder.calls if c.function in ("MailchimpSyncFunction", "SheepActionsFunction")]
    assert {c.action for c in mine if c.function == "MailchimpSyncFunction"} >= {
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    }
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in mine
        if not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)


def test_every_aws_call_of_the_stream_dispatcher_is_allowed_by_its_policy(
    recorder: Recorder, signals: Signals, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StreamDispatcherFunction on the changes it really gets (ledger and feed INSERTs, a restore):
    SendMessageBatch to the publisher's and the signal feed's FIFO queues, and nothing else."""
    org = make_org("org-a", "org-a")
    monkeypatch.setenv("PUBLISHER_QUEUE_URL", signals.bus.queues["PublisherQueue"])
    monkeypatch.setenv("SIGNAL_FEED_QUEUE_URL", signals.bus.queues["SignalFeedQueue"])
    aws.reset()
    segment_id = create_segment(api, org.key, "Dispatched")
    add(api, org.key, segment_id, "p-a1b2c3d4e5f6")
    assert (
        failures(
            functions().invoke(
                "SignalsIngestFunction", sqs_batch([sqs_record(person_event("death", "p-a1b2c3d4e5f6"))])
            )
        )
        == []
    )
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    assert (
        api.post(f"/segments/v2/{org.bucket}/segment/{segment_id.replace('-', '')}/restore", bearer=org.key).status
        == 200
    )
    assert failures(functions().invoke("StreamDispatcherFunction", {"Records": signals.stream_batch()})) == []
    sent = {c.resource for c in recorder.calls if c.function == "StreamDispatcherFunction"}
    assert {r.rsplit(":", 1)[-1] for r in sent} == {"PublisherQueue.fifo", "SignalFeedQueue.fifo"}
    tpl = template()
    denied = sorted(
        f"{c.function}: {c.action} on {c.resource} (for {c.operation})"
        for c in recorder.calls
        if c.function == "StreamDispatcherFunction"
        and not allowed(policy_statements(tpl, c.function), c.action, c.resource)
    )
    assert denied == [], "calls template.yaml does not allow:\n" + "\n".join(denied)
