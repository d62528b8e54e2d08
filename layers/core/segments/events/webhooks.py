"""The webhook wire format (docs/api.md#webhooks): Standard Webhooks, exactly.

A delivery is a POST whose body is `{"type", "timestamp", "data"}` (compact JSON, UTF-8), where
`data` is the segment event's detail as it went on the bus, and whose headers are
`webhook-id` (the message: one per endpoint and event, the same on every attempt),
`webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`: `v1,` + base64
HMAC-SHA256, keyed with the secret's bytes, of `{id}.{timestamp}.{body}`; during a rotation's
overlap one `v1,` value per live secret, separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from segments.events import outbox

# bus detail-type -> webhook event type
TYPES = {
    outbox.SIGNAL_DETECTED: "segment.signal.detected",
    outbox.MEMBERSHIP_CHANGED: "segment.membership.changed",
    outbox.EXPORT_FINISHED: "segment.export.finished",
}
PING = "webhook.ping"
EVENT_TYPES = tuple(TYPES.values())  # what an endpoint may subscribe to
CONTENT_TYPE = "application/json"
USER_AGENT = "Segments-Webhooks/1"


def message_id(webhook_id: str, event_id: str) -> str:
    """`msg_` + 32 hex: the same for one event at one endpoint, whatever the attempt."""
    return "msg_" + hashlib.sha256(f"{webhook_id}\n{event_id}".encode()).hexdigest()[:32]


def body(event_type: str, timestamp: str, data: Mapping[str, Any]) -> bytes:
    """Keys sorted: the same bytes on every attempt, whether the event came off the bus, out of a
    re-queued message or out of the table."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=True,
    ).encode()


def sign(msg_id: str, timestamp: int, payload: bytes, key: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(msg_id: str, timestamp: int, payload: bytes, keys: Sequence[bytes]) -> dict[str, str]:
    """The headers of one attempt, signed with every key given (newest first)."""
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(msg_id, timestamp, payload, key) for key in keys),
    }
