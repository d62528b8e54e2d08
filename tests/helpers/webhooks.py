"""Webhooks in tests: a receiver on 127.0.0.1 whose answers a test scripts, and a rig (moto's KMS
key, the delivery queue, the settings) that runs the fan-out and delivery functions as Lambda's
event source mappings would, by draining the queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from conftest import REGION, functions
from helpers.signals import failures, sqs_batch, sqs_record
from segments import aws
from segments.events import outbox

DELIVERY_QUEUE = "WebhookDeliveryQueue"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 (port chosen by the system) recording every POST. `answers` is
    consumed one per request (an int status, or "hang": no answer until the server stops or
    `hang_seconds` pass); when empty, 200."""

    answers: list[Any] = field(default_factory=list)
    hang_seconds: float = 30.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with owner._lock:
                    owner.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    answer = owner.answers.pop(0) if owner.answers else 200
                if answer == "hang":
                    owner._stop.wait(owner.hang_seconds)
                    return
                self.send_response(int(answer))
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def release(self) -> None:
        """Let every hanging request go (without an answer)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Rig:
    queue_url: str

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    def bus_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """EventBridge's envelope of a segment event, as the rule puts it on WebhookEventsQueue."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": outbox.SOURCE,
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": REGION,
            "resources": [],
            "detail": detail,
        }

    def publish(self, *envelopes: dict[str, Any]) -> None:
        """WebhookFanoutFunction on one batch of these bus events."""
        result = functions().invoke("WebhookFanoutFunction", sqs_batch([sqs_record(e) for e in envelopes]))
        assert failures(result) == []

    def death(self, org_id: str, segment_id: str, pid: str = "p-a1b2c3") -> dict[str, Any]:
        detail = {
            "event_id": "sig_" + uuid.uuid4().hex,
            "segment_id": segment_id,
            "org_id": org_id,
            "minerva_pid": pid,
            "signal_type": "death",
            "signal": {
                "minerva_pid": pid,
                "obituary_id": "obit-1",
                "date_of_death": "2024-01-01",
                "signal_metadata": {"source": "obituaries", "confidence_score": 0.95},
            },
        }
        return self.bus_event(outbox.SIGNAL_DETECTED, detail)

    def pending(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesDelayed"])

    def drain(self, seconds: float = 20.0, *, until: Callable[[], bool] | None = None) -> int:
        """Run WebhookDeliveryFunction on the queue's messages (batches of 10, as the template's
        event source) until it is empty (or `until` holds), for at most `seconds`; delayed messages
        are waited for. Returns the batches run."""
        deadline, batches = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            if until is not None and until():
                return batches
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                if until is None and self.pending() == 0:
                    return batches
                time.sleep(0.2)
                continue
            records = [sqs_record(m["Body"], message_id=m["MessageId"]) for m in messages]
            result = functions().invoke("WebhookDeliveryFunction", sqs_batch(records))
            failed = set(failures(result))
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            batches += 1
        return batches


def rig_fixture(aws_fixture: None, monkeypatch: pytest.MonkeyPatch, **settings: str) -> Rig:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="webhook secrets")["KeyMetadata"]["KeyId"]
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=DELIVERY_QUEUE)["QueueUrl"]
    env = {
        "WEBHOOKS_TABLE_NAME": "WebhooksTable",
        "WEBHOOK_KMS_KEY_ID": key_id,
        "WEBHOOK_DELIVERY_QUEUE_URL": url,
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_RETRY_SCHEDULE": "1,1",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        **settings,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    return Rig(url)


def exercise_webhooks(api: Any, org: Any, other: Any, rig: Rig) -> None:
    """Happy and common error paths of every webhook route, and both consumers (for tests/test_iam.py)."""
    k = org.key
    receiver = Receiver(answers=[500])
    try:
        body = {"url": receiver.url, "events": ["segment.signal.detected"], "description": "iam"}
        idem = {"Idempotency-Key": f"w-{uuid.uuid4()}"}
        for _ in range(2):
            created = api.post("/v2/webhooks", key=k, body=body, headers=idem)
            assert created.status == 201, created.text
        webhook_id = created.json["webhook_id"]
        assert (
            api.post("/v2/webhooks", key=k, body={"url": "file:///x", "events": ["segment.signal.detected"]}).status
            == 422
        )
        assert api.get("/v2/webhooks", key=k).status == 200
        path = f"/v2/webhooks/{webhook_id}"
        assert api.get(path, key=k).status == 200
        assert api.get(path, key=other.key).status == 404
        assert api.patch(path, key=k, body={"description": "changed", "enabled": True}).status == 200
        assert api.patch(f"/v2/webhooks/wh_{'0' * 32}", key=k, body={"description": "x"}).status == 404
        assert api.post(f"{path}/rotate-secret", key=k).status == 200
        assert api.post(f"{path}/test", key=k).status == 202
        rig.publish(rig.death(org.org_id, str(uuid.uuid4())))
        rig.drain(20)
        page = api.get(f"{path}/deliveries", key=k, query={"limit": 1})
        assert page.status == 200 and page.json["next_cursor"], page.text
        assert api.get(f"{path}/deliveries", key=k, query={"cursor": page.json["next_cursor"]}).status == 200
        assert api.get(f"{path}/deliveries", key=k, query={"cursor": "bad"}).status == 422
        delivery_id = page.json["results"][0]["delivery_id"]
        assert api.post(f"{path}/deliveries/{delivery_id}/redeliver", key=k).status == 202
        window = {"since": "2020-01-01", "until": "2999-01-01T00:00:00Z"}
        assert api.post(f"{path}/replay", key=k, body=window).status == 202
        rig.drain(20)
        assert api.delete(path, key=k).status == 200
        assert api.delete(path, key=k).status == 404
        rig.publish(rig.death(org.org_id, str(uuid.uuid4())))  # an org whose webhook is gone
    finally:
        receiver.stop()
