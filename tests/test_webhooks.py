"""Webhooks end to end in moto: registration, Standard Webhooks signatures (verified by the
`standardwebhooks` library), retries, the disable window, SSRF refusals, org isolation, rotation,
redelivery and replay, and a hanging receiver that holds up no other org."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.webhooks import Receiver, Rig, rig_fixture
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import Api, Org, make_org


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def rig(aws: None, monkeypatch: pytest.MonkeyPatch) -> Rig:
    return rig_fixture(aws, monkeypatch)


def register(api: Api, org: Org, url: str, **body: Any) -> dict[str, Any]:
    reply = api.post("/v2/webhooks", key=org.key, body={"url": url, "events": ["segment.signal.detected"], **body})
    assert reply.status == 201, reply.text
    return reply.json


def verify(secret: str, got: Any) -> dict[str, Any]:
    """What the library makes of a delivery (it raises if the signature does not verify)."""
    return Webhook(secret).verify(got.body, got.headers)


def test_a_death_arrives_signed_and_the_library_verifies_it(api: Api, org: Org, rig: Rig, receiver: Receiver) -> None:
    created = register(api, org, receiver.url)
    assert created["secret"].startswith("whsec_") and created["webhook_id"].startswith("wh_")
    segment_id = str(uuid.uuid4())
    rig.publish(rig.death(org.org_id, segment_id))
    rig.drain()
    [got] = receiver.received
    payload = verify(created["secret"], got)
    assert payload["type"] == "segment.signal.detected"
    assert payload["data"]["segment_id"] == segment_id and payload["data"]["signal_type"] == "death"
    assert got.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):  # another secret does not verify
        Webhook("whsec_" + "QUJDRA==" * 4).verify(got.body, got.headers)
    # the secret is never shown again
    shown = api.get(f"/v2/webhooks/{created['webhook_id']}", key=org.key)
    assert shown.status == 200 and "whsec_" not in shown.text and "ciphertext" not in shown.text
    assert created["secret"] not in api.get("/v2/webhooks", key=org.key).text
    # a ping, to this webhook alone
    ping = api.post(f"/v2/webhooks/{created['webhook_id']}/test", key=org.key)
    assert ping.status == 202, ping.text
    rig.drain()
    assert len(receiver.received) == 2
    pinged = verify(created["secret"], receiver.received[-1])
    assert pinged["type"] == "webhook.ping" and pinged["data"]["webhook_id"] == created["webhook_id"]
    assert receiver.received[-1].headers["webhook-id"] == ping.json["delivery_id"]


def attempts_of(api: Api, org: Org, webhook_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/v2/webhooks/{webhook_id}/deliveries", key=org.key, query={"limit": 100})
    assert reply.status == 200, reply.text
    return list(reversed(reply.json["results"]))  # oldest first


def test_a_500_then_a_timeout_are_retried_and_every_attempt_has_one_webhook_id(
    api: Api, org: Org, rig: Rig, receiver: Receiver
) -> None:
    created = register(api, org, receiver.url)
    receiver.answers = [500, "hang", 200]
    receiver.hang_seconds = 5  # longer than WEBHOOK_TIMEOUT_SECONDS (2 in the rig)
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain(60)
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    for got in receiver.received:
        verify(created["secret"], got)
    attempts = attempts_of(api, org, created["webhook_id"])
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
        (1, 500, "retrying"),
        (2, None, "retrying"),
        (3, 200, "delivered"),
    ]
    assert attempts[0]["error"] == "HTTP 500" and "no answer" in attempts[1]["error"]
    assert api.get(f"/v2/webhooks/{created['webhook_id']}", key=org.key).json["failing_since"] is None


def test_after_the_schedule_the_delivery_is_failed_and_kept_for_redelivery(
    api: Api, org: Org, rig: Rig, receiver: Receiver
) -> None:
    created = register(api, org, receiver.url)
    webhook_id = created["webhook_id"]
    receiver.answers = [503, 503, 503]  # the rig's schedule: two retries
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain(30)
    attempts = attempts_of(api, org, webhook_id)
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "failed"]
    delivery_id = attempts[-1]["delivery_id"]
    assert api.get(f"/v2/webhooks/{webhook_id}", key=org.key).json["state"] == "active"  # not yet the window

    again = api.post(f"/v2/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", key=org.key)
    assert again.status == 202, again.text
    rig.drain(30)
    assert len(receiver.received) == 4 and receiver.received[-1].headers["webhook-id"] == delivery_id
    assert attempts_of(api, org, webhook_id)[-1]["outcome"] == "delivered"
    missing = f"/v2/webhooks/{webhook_id}/deliveries/msg_{'0' * 32}/redeliver"
    assert api.post(missing, key=org.key).status == 404


def test_replay_sends_the_window_again_to_that_webhook_only(api: Api, org: Org, rig: Rig) -> None:
    first, second = Receiver(), Receiver()
    try:
        one = register(api, org, first.url)
        register(api, org, second.url)
        events = [rig.death(org.org_id, str(uuid.uuid4()), pid=f"p-{n}") for n in range(3)]
        rig.publish(*events)
        rig.drain()
        assert len(first.received) == 3 and len(second.received) == 3
        window = {"since": "2020-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"}
        replayed = api.post(f"/v2/webhooks/{one['webhook_id']}/replay", key=org.key, body=window)
        assert replayed.status == 202 and replayed.json["queued"] == 3, replayed.text
        rig.drain()
        assert len(first.received) == 6 and len(second.received) == 3
        ids = [r.headers["webhook-id"] for r in first.received]
        assert sorted(ids[:3]) == sorted(ids[3:])  # the same messages: receivers deduplicate on webhook-id
        empty = {"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
        assert api.post(f"/v2/webhooks/{one['webhook_id']}/replay", key=org.key, body=empty).json["queued"] == 0
        backwards = {"since": "2021-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
        assert api.post(f"/v2/webhooks/{one['webhook_id']}/replay", key=org.key, body=backwards).status == 422
    finally:
        first.stop()
        second.stop()


def test_a_second_orgs_events_never_reach_the_first_orgs_url(api: Api, org: Org, rig: Rig, receiver: Receiver) -> None:
    other = make_org("org-b", "org-b")
    register(api, org, receiver.url)
    elsewhere = Receiver()
    try:
        register(api, other, elsewhere.url)
        mine, theirs = rig.death(org.org_id, str(uuid.uuid4())), rig.death(other.org_id, str(uuid.uuid4()))
        rig.publish(theirs, mine, theirs)
        rig.drain()
        assert [r.json["data"]["org_id"] for r in receiver.received] == [org.org_id]
        assert {r.json["data"]["org_id"] for r in elsewhere.received} == {other.org_id}
        # and its webhooks are not even visible
        assert api.get("/v2/webhooks", key=other.key).json["results"][0]["url"] == elsewhere.url
        [mine_listed] = api.get("/v2/webhooks", key=org.key).json["results"]
        assert api.get(f"/v2/webhooks/{mine_listed['webhook_id']}", key=other.key).status == 404
    finally:
        elsewhere.stop()


def test_filters_by_event_type_and_segment(api: Api, org: Org, rig: Rig, receiver: Receiver) -> None:
    wanted = str(uuid.uuid4())
    register(api, org, receiver.url, segment_ids=[wanted])
    change = {"event_id": "mem_" + uuid.uuid4().hex + "_0", "segment_id": wanted, "org_id": org.org_id}
    change |= {"added": ["p-1"], "removed": [], "reason": "api", "api_request_id": "r", "at": "2024-01-01T00:00:00Z"}
    membership = rig.bus_event("Segment Membership Changed", change)
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())), membership, rig.death(org.org_id, wanted))
    rig.drain()
    assert [(r.json["type"], r.json["data"]["segment_id"]) for r in receiver.received] == [
        ("segment.signal.detected", wanted)
    ]


def test_a_finished_export_reaches_the_endpoints_subscribed_to_it(
    api: Api, org: Org, rig: Rig, receiver: Receiver
) -> None:
    """`segment.export.finished` carries the bus event's detail (docs/api.md#exports) to the
    endpoints that asked for it; an endpoint of signals only does not get it."""
    register(api, org, receiver.url, events=["segment.export.finished"])
    register(api, org, receiver.url + "?signals-only", events=["segment.signal.detected"])
    segment_id, export_id = str(uuid.uuid4()), str(uuid.uuid4())
    finished = {"event_id": "exp_" + uuid.uuid4().hex, "org_id": org.org_id, "segment_id": segment_id}
    finished |= {"export_id": export_id, "format": "csv", "rows": 3, "status": "succeeded", "error": None}
    rig.publish(rig.bus_event("Segment Export Finished", finished))
    rig.drain()
    assert [(r.path, r.json["type"], r.json["data"]) for r in receiver.received] == [
        ("/hook", "segment.export.finished", finished)
    ]


def test_an_endpoint_failing_for_the_window_is_disabled_and_says_so_on_the_bus(
    api: Api, org: Org, aws: None, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    import boto3

    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="SegmentsBus")
    watch = sqs.create_queue(QueueName="watch")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=watch, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="disabled", EventBusName="SegmentsBus", EventPattern='{"detail-type": ["Webhook Endpoint Disabled"]}'
    )
    events.put_targets(Rule="disabled", EventBusName="SegmentsBus", Targets=[{"Id": "q", "Arn": arn}])
    rig = rig_fixture(
        aws,
        monkeypatch,
        WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1,1",
        WEBHOOK_DISABLE_AFTER_SECONDS="2",
        EVENT_BUS_NAME="SegmentsBus",
    )
    created = register(api, org, receiver.url)
    webhook_id = created["webhook_id"]
    receiver.answers = [500] * 10
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain(30)
    shown = api.get(f"/v2/webhooks/{webhook_id}", key=org.key).json
    assert shown["state"] == "disabled" and shown["disabled_at"] and shown["failing_since"]
    outcomes = [a["outcome"] for a in attempts_of(api, org, webhook_id)]
    assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"retrying"} and 3 <= len(outcomes) <= 5
    got = sqs.receive_message(QueueUrl=watch, MaxNumberOfMessages=10).get("Messages", [])
    [detail] = [json.loads(m["Body"])["detail"] for m in got]
    assert detail["webhook_id"] == webhook_id and detail["org_id"] == org.org_id
    # a disabled endpoint gets nothing new, until it is enabled again
    before = len(receiver.received)
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain()
    assert len(receiver.received) == before
    receiver.answers = []  # the receiver is fixed
    enabled = api.patch(f"/v2/webhooks/{webhook_id}", key=org.key, body={"enabled": True})
    assert enabled.status == 200 and enabled.json["state"] == "active" and enabled.json["failing_since"] is None
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain()
    assert len(receiver.received) == before + 1


PUBLIC = "93.184.216.34"


def resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    """socket.getaddrinfo answering `answers` (host -> address) and nothing else."""
    import socket

    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_urls_that_reach_inside_are_refused_at_registration_and_at_delivery(
    api: Api, org: Org, aws: None, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    rig = rig_fixture(aws, monkeypatch, WEBHOOK_ALLOW_PRIVATE_URLS="false")
    resolving(monkeypatch, {"hooks.example.test": "127.0.0.1", "moving.example.test": PUBLIC})
    refused = [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://10.0.0.1/hook",
        "https://192.168.1.1/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "file:///etc/passwd",
        "ftp://example.com/",
        "https://hooks.example.test/hook",  # a name resolving to 127.0.0.1
        receiver.url,  # http on 127.0.0.1
        "https://user:pw@moving.example.test/",
    ]
    for url in refused:
        reply = api.post("/v2/webhooks", key=org.key, body={"url": url, "events": ["segment.signal.detected"]})
        assert reply.status == 422, (url, reply.text)
        assert "url" in reply.json["error"], reply.text
    assert api.get("/v2/webhooks", key=org.key).json["results"] == []

    # registered while it resolved to a public address; by delivery time its DNS points inside
    created = register(api, org, "https://moving.example.test/hook")
    resolving(monkeypatch, {"moving.example.test": "127.0.0.1"})
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain(10)
    first = attempts_of(api, org, created["webhook_id"])[0]
    assert first["status_code"] is None and first["error"].startswith("refused: ")
    assert receiver.received == []
    changed = api.patch(f"/v2/webhooks/{created['webhook_id']}", key=org.key, body={"url": "http://10.0.0.1/"})
    assert changed.status == 422


def test_during_a_rotation_both_secrets_sign(
    api: Api, org: Org, rig: Rig, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segments import aws as core

    created = register(api, org, receiver.url)
    webhook_id = created["webhook_id"]
    rotated = api.post(f"/v2/webhooks/{webhook_id}/rotate-secret", key=org.key)
    assert rotated.status == 200 and rotated.json["previous_secret_expires_at"], rotated.text
    old, new = created["secret"], rotated.json["secret"]
    assert new != old and new.startswith("whsec_")
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain()
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(old, got)
    verify(new, got)

    monkeypatch.setenv("WEBHOOK_ROTATION_OVERLAP_SECONDS", "0")  # the old secret ends now
    core.reset()
    newest = api.post(f"/v2/webhooks/{webhook_id}/rotate-secret", key=org.key).json["secret"]
    rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
    rig.drain()
    last = receiver.received[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    verify(newest, last)
    with pytest.raises(WebhookVerificationError):
        verify(new, last)


def test_a_receiver_that_hangs_holds_up_no_other_org(
    api: Api, org: Org, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch holds a message to a hanging receiver (org A) and one to a healthy one (org B):
    B's POST arrives while A's is still hanging. Then A's endpoint is paused: its next delivery is
    put back untried, and B's goes through."""
    import threading

    from helpers.signals import run, sqs_batch, sqs_record
    from helpers.waiting import wait_for

    # a pause longer than the test; a timeout long enough to look while A's POST still hangs
    rig = rig_fixture(aws, monkeypatch, WEBHOOK_RETRY_SCHEDULE="60", WEBHOOK_TIMEOUT_SECONDS="8")
    other = make_org("org-b", "org-b")
    hanging, healthy = Receiver(answers=["hang"] * 5, hang_seconds=60), Receiver()
    try:
        a = register(api, org, hanging.url)
        register(api, other, healthy.url)
        rig.publish(rig.death(org.org_id, str(uuid.uuid4())), rig.death(other.org_id, str(uuid.uuid4())))
        messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert len(messages) == 2
        batch = sqs_batch([sqs_record(m["Body"], message_id=m["MessageId"]) for m in messages])
        for m in messages:
            rig.sqs.delete_message(QueueUrl=rig.queue_url, ReceiptHandle=m["ReceiptHandle"])
        worker = threading.Thread(target=run, args=("WebhookDeliveryFunction", batch))
        worker.start()
        wait_for("both POSTs", lambda: healthy.received and hanging.received, timeout=60, every=0.01)
        assert worker.is_alive()  # B's POST came and went while A's still hangs
        worker.join(60)
        assert not worker.is_alive()

        rig.publish(rig.death(org.org_id, str(uuid.uuid4())), rig.death(other.org_id, str(uuid.uuid4())))
        rig.drain(until=lambda: len(healthy.received) == 2)
        assert len(hanging.received) == 1  # paused: not tried again yet
        [attempt] = attempts_of(api, org, a["webhook_id"])
        assert attempt["status_code"] is None and "no answer" in attempt["error"]
    finally:
        hanging.stop()
        healthy.stop()


def test_the_limit_per_org_and_idempotent_creates(
    api: Api, org: Org, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig_fixture(aws, monkeypatch, WEBHOOK_LIMIT_PER_ORG="2")
    body = {"url": "http://127.0.0.1:9/hook", "events": ["segment.membership.changed"]}
    key = {"Idempotency-Key": "create-1"}
    first = api.post("/v2/webhooks", key=org.key, body=body, headers=key)
    again = api.post("/v2/webhooks", key=org.key, body=body, headers=key)
    assert first.status == again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["webhook_id"] == first.json["webhook_id"] and again.json["secret"] == first.json["secret"]
    assert api.post("/v2/webhooks", key=org.key, body=body).status == 201
    over = api.post("/v2/webhooks", key=org.key, body=body)
    assert over.status == 422 and "at most 2" in over.json["error"]
    assert len(api.get("/v2/webhooks", key=org.key).json["results"]) == 2
    assert api.delete(f"/v2/webhooks/{first.json['webhook_id']}", key=org.key).status == 200
    assert api.post("/v2/webhooks", key=org.key, body=body).status == 201
    # another org has its own count
    assert api.post("/v2/webhooks", key=make_org("org-b", "org-b").key, body=body).status == 201
    # bad bodies, in Minerva's error shape
    for bad in ({"url": "http://127.0.0.1:9/", "events": []}, {"url": "http://127.0.0.1:9/", "events": ["birth"]},
                {"events": ["segment.signal.detected"]}, {**body, "secret": "mine"}):  # fmt: skip
        reply = api.post("/v2/webhooks", key=org.key, body=bad)
        assert reply.status == 422 and reply.json["status_code"] == 422, (bad, reply.text)
    [one, *_] = api.get("/v2/webhooks", key=org.key).json["results"]
    assert api.patch(f"/v2/webhooks/{one['webhook_id']}", key=org.key, body={"url": None}).status == 422


def test_an_attempt_left_unanswered_holds_the_endpoints_other_deliveries(
    api: Api, org: Org, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one POST waits for an answer (past the first second), the endpoint's next delivery is
    put back untried instead of taking a timeout of its own; once the attempt ends, it is tried."""
    import threading

    from helpers.signals import run, sqs_batch, sqs_record
    from helpers.waiting import wait_for

    from segments.store import webhooks as store

    rig = rig_fixture(aws, monkeypatch, WEBHOOK_TIMEOUT_SECONDS="4")
    slow = Receiver(answers=["hang"], hang_seconds=60)
    try:
        created = register(api, org, slow.url)
        rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
        [first] = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)["Messages"]
        rig.sqs.delete_message(QueueUrl=rig.queue_url, ReceiptHandle=first["ReceiptHandle"])
        worker = threading.Thread(target=run, args=("WebhookDeliveryFunction", sqs_batch([sqs_record(first["Body"])])))
        worker.start()
        held = lambda: (store.get(org.org_id, created["webhook_id"]) or {}).get("paused_until")  # noqa: E731
        wait_for("the hold on the slow endpoint", held, timeout=30, every=0.05)
        rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
        [second] = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)["Messages"]
        rig.sqs.delete_message(QueueUrl=rig.queue_url, ReceiptHandle=second["ReceiptHandle"])
        run("WebhookDeliveryFunction", sqs_batch([sqs_record(second["Body"])]))
        assert worker.is_alive() and len(slow.received) == 1  # put back, not tried
        assert rig.pending() == 1
        worker.join(60)
    finally:
        slow.stop()
