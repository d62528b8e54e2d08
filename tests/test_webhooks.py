"""Webhooks end to end in moto: registration, Standard Webhooks signatures (verified by the
`standardwebhooks` library), retries, the disable window, SSRF refusals, org isolation, rotation,
redelivery and replay, and a hanging receiver that holds up no other org."""

from __future__ import annotations

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
