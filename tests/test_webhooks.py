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

from conftest import Api, Org


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
