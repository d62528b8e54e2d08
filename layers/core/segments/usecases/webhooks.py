"""An org's webhook endpoints (docs/api.md#webhooks): register, read, change, delete, rotate the
secret, send a ping, list attempts, redeliver one delivery, replay a window of events.

The signing secret is returned once, by `register` and `rotate_secret`; what is stored is its KMS
ciphertext. Deliveries themselves are made by usecases/webhook_delivery.py.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from segments import cursors, errors
from segments.config import get_settings
from segments.events import webhooks as wire
from segments.external import outbound, webhook_secrets
from segments.models import Actor
from segments.store import webhooks as store
from segments.timefmt import iso, now
from segments.usecases import webhook_delivery as delivery

NOT_FOUND = "Webhook not found"
REPLAY_MAX = 1_000  # events one replay call re-sends; `next_since` continues
ATTEMPTS_CURSOR = "webhook_attempts"
VIEW = ("webhook_id", "url", "events", "segment_ids", "description", "state", "created_at", "updated_at",
        "failing_since", "disabled_at", "secret_rotated_at")  # fmt: skip


def view(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """What a caller sees of an endpoint: never a secret."""
    out = {k: endpoint.get(k) for k in VIEW}
    out["segment_ids"] = list(endpoint.get("segment_ids") or [])
    return out


def check_url(url: str) -> str:
    try:
        outbound.check_url(url, allow_private=get_settings().webhook_allow_private_urls)
    except outbound.Refused as exc:
        raise errors.ValidationFailed(f"Invalid 'url': {exc}") from exc
    return url


def _secret_entry(org_id: str, webhook_id: str, secret: str, at: str) -> dict[str, Any]:
    return {"ciphertext": webhook_secrets.encrypt(org_id, webhook_id, secret), "created_at": at}


def register(
    who: Actor, url: str, events: Sequence[str], segment_ids: Sequence[str], description: str | None
) -> dict[str, Any]:
    check_url(url)
    webhook_id = "wh_" + uuid.uuid4().hex
    stamp = iso(now())
    first = _secret_entry(who.org_id, webhook_id, webhook_secrets.new_secret(), stamp)
    endpoint: dict[str, Any] = {
        "org_id": who.org_id,
        "webhook_id": webhook_id,
        "url": url,
        "events": list(dict.fromkeys(events)),
        "segment_ids": list(dict.fromkeys(segment_ids)),
        "description": description,
        "state": "active",
        "created_at": stamp,
        "updated_at": stamp,
        "secrets": [first],
    }
    limit = get_settings().webhook_limit_per_org
    try:
        store.create(endpoint, limit)
    except store.LimitReached as exc:
        raise errors.ValidationFailed(f"An organisation may register at most {limit} webhooks") from exc
    return {**view(endpoint), "secret_ciphertext": first["ciphertext"]}


def _endpoint(who: Actor, webhook_id: str) -> dict[str, Any]:
    found = store.get(who.org_id, webhook_id)
    if found is None:
        raise errors.NotFound(NOT_FOUND)
    return found


def get(who: Actor, webhook_id: str) -> dict[str, Any]:
    return view(_endpoint(who, webhook_id))


def list_all(who: Actor) -> list[dict[str, Any]]:
    return [view(e) for e in store.list_for_org(who.org_id)]


def update(who: Actor, webhook_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """`url`, `events`, `segment_ids`, `description` replaced; `enabled` true re-enables a disabled
    endpoint (its failure record cleared), false disables it."""
    _endpoint(who, webhook_id)
    sets: dict[str, Any] = {"updated_at": iso(now())}
    removes: list[str] = []
    if "url" in changes:
        sets["url"] = check_url(changes["url"])
    if "events" in changes:
        sets["events"] = list(dict.fromkeys(changes["events"]))
    if "segment_ids" in changes:
        sets["segment_ids"] = list(dict.fromkeys(changes["segment_ids"] or []))
    if "description" in changes:
        if changes["description"] is None:
            removes.append("description")
        else:
            sets["description"] = changes["description"]
    if changes.get("enabled") is True:
        sets["state"] = "active"
        removes += ["failing_since", "paused_until", "failures", "disabled_at", "disabled_reason"]
    elif changes.get("enabled") is False:
        sets |= {"state": "disabled", "disabled_at": sets["updated_at"], "disabled_reason": "api"}
    return view(store.update(who.org_id, webhook_id, sets, removes))


def delete(who: Actor, webhook_id: str) -> dict[str, Any]:
    if not store.delete(who.org_id, webhook_id):
        raise errors.NotFound(NOT_FOUND)
    return {"webhook_id": webhook_id, "deleted": True}


def rotate_secret(who: Actor, webhook_id: str) -> dict[str, Any]:
    """A new secret; the current one keeps signing beside it for WEBHOOK_ROTATION_OVERLAP_SECONDS
    (a secret already rotated out keeps its earlier end; only the newest old one is kept)."""
    endpoint = _endpoint(who, webhook_id)
    at = now()
    stamp = iso(at)
    until = iso(at + timedelta(seconds=get_settings().webhook_rotation_overlap_seconds))
    kept = [
        {**s, "expires_at": min(s.get("expires_at") or until, until)}
        for s in endpoint.get("secrets") or []
        if not s.get("expires_at") or s["expires_at"] > stamp
    ]
    kept.sort(key=lambda s: s.get("created_at", ""), reverse=True)
    secret = webhook_secrets.new_secret()
    entries = [_secret_entry(who.org_id, webhook_id, secret, stamp), *kept[:1]]
    store.update(who.org_id, webhook_id, {"secrets": entries, "secret_rotated_at": stamp, "updated_at": stamp})
    return {
        "webhook_id": webhook_id,
        "secret_ciphertext": entries[0]["ciphertext"],
        "previous_secret_expires_at": until if kept else None,
    }


def reveal(who: Actor, result: Mapping[str, Any]) -> dict[str, Any]:
    """`register`'s or `rotate_secret`'s result with its secret in the clear, for the one response
    that shows it. The result itself (what an Idempotency-Key replay keeps) holds only ciphertext."""
    out = {k: v for k, v in result.items() if k != "secret_ciphertext"}
    out["secret"] = webhook_secrets.decrypt(
        who.org_id, str(result["webhook_id"]), str(result["secret_ciphertext"]), cached=False
    )
    return out


def send_ping(who: Actor, webhook_id: str) -> dict[str, Any]:
    """A `webhook.ping` event to this endpoint alone (disabled or not), through the delivery queue."""
    endpoint = _endpoint(who, webhook_id)
    event_id = "ping_" + secrets.token_hex(16)
    event = {
        "org_id": who.org_id,
        "event_id": event_id,
        "at": iso(now()),
        "type": wire.PING,
        "data": {"webhook_id": webhook_id, "org_id": who.org_id, "event_id": event_id},
        "expires_at": delivery.expires(),
    }
    store.put_org_events([event])
    message = delivery.new_message(endpoint, event)
    delivery.enqueue([{**message, "manual": True}])
    return {"webhook_id": webhook_id, "delivery_id": message["delivery_id"], "event_id": event_id}


def attempts(who: Actor, webhook_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    _endpoint(who, webhook_id)
    after = None
    if cursor:
        position = cursors.decode(cursor, ATTEMPTS_CURSOR, webhook_id)
        if not isinstance(position, str) or not 0 < len(position) <= 200:
            raise errors.ValidationFailed(cursors.INVALID)
        after = {"sk": position}
    items, last = store.attempts(webhook_id, limit, after)
    fields = ("delivery_id", "event_id", "type", "attempt", "at", "status_code", "latency_ms", "error", "outcome")
    return {
        "items": [{k: i.get(k) for k in fields} for i in items],
        "next_cursor": cursors.encode(ATTEMPTS_CURSOR, webhook_id, last) if last else None,
    }


def redeliver(who: Actor, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """The delivery's event again, now, under the same webhook-id, with a fresh retry schedule."""
    endpoint = _endpoint(who, webhook_id)
    if endpoint.get("state") != "active":
        raise errors.ValidationFailed("The webhook is disabled: enable it first (PATCH enabled: true)")
    found = store.get_delivery(webhook_id, delivery_id)
    event = found and store.get_org_event(who.org_id, str(found["event_at"]), str(found["event_id"]))
    if not found or not event:
        raise errors.NotFound("Delivery not found")
    delivery.enqueue([{**delivery.new_message(endpoint, event), "manual": True}])
    return {"webhook_id": webhook_id, "delivery_id": delivery_id, "queued": True}


def replay(who: Actor, webhook_id: str, since: str, until: str) -> dict[str, Any]:
    """The org's events kept with `since` <= time <= `until` that this endpoint wants, again (at most
    REPLAY_MAX a call: `next_since` says where the next call starts)."""
    endpoint = _endpoint(who, webhook_id)
    if endpoint.get("state") != "active":
        raise errors.ValidationFailed("The webhook is disabled: enable it first (PATCH enabled: true)")
    messages: list[dict[str, Any]] = []
    next_since = None
    for event in store.org_events(who.org_id, since, until):
        if not delivery.wants(endpoint, str(event.get("type")), event.get("segment_id")):
            continue
        if len(messages) == REPLAY_MAX:
            next_since = event["at"]
            break
        messages.append(delivery.new_message(endpoint, event))
    delivery.enqueue(messages)
    return {"webhook_id": webhook_id, "queued": len(messages), "next_since": next_since}
