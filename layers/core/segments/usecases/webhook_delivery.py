"""Webhook deliveries (docs/api.md#webhooks): the org's segment events, as the bus carried them, to
each of its endpoints that wants them; retried on SQS's clock, never a sleeping function.

- `fan_out` (WebhookFanoutFunction, one bus event from WebhookEventsQueue): the org's endpoints are
  read (one Query), the event is kept for replays, and one delivery message per matching endpoint
  goes onto the delivery queue. An event of an org without endpoints costs that one Query.
- `deliver` (WebhookDeliveryFunction, one delivery message): the endpoint is read again (it may
  have changed, been disabled or deleted), its URL checked again, the POST made (outbound.post:
  timeout, no redirect, capped answer), the attempt recorded; a failure goes back onto the queue
  with DelaySeconds (the schedule's next step with jitter; a step over SQS's 900 s is waited out in
  hops of at most 900 s), until the schedule is spent: then the delivery is `failed`, kept for
  redelivery.
- An endpoint that times out or cannot be reached is paused (`paused_until`, growing with its
  consecutive failures): while paused its deliveries are put back on the queue untried, and when
  the pause ends one of them probes it (a conditional claim). An attempt still unanswered after
  SLOW_AFTER holds the endpoint's other deliveries the same way until its own outcome. A hanging
  endpoint thus costs about one timeout per pause, not one per delivery, and never holds the
  queue for other endpoints.
- An endpoint that has failed every attempt for WEBHOOK_DISABLE_AFTER_SECONDS is disabled and
  `Webhook Endpoint Disabled` goes on the bus.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from segments import aws, errors, queues
from segments.config import get_settings
from segments.events import bus
from segments.events import webhooks as wire
from segments.external import outbound, webhook_secrets
from segments.observability import MetricUnit, logger, metrics
from segments.store import webhooks as store
from segments.timefmt import instant, iso, now

SQS_DELAY_MAX = 900
SLOW_AFTER = 1.0  # seconds without an answer after which an endpoint's other deliveries wait for this one
JITTER = 0.1  # a retry waits its step +/- 10 %
RETENTION_SECONDS = 30 * 86400  # deliveries, attempts and the org's events are kept this long
DISABLED_EVENT = "Webhook Endpoint Disabled"


def _queue_url() -> str:
    url = get_settings().webhook_delivery_queue_url
    if not url:
        raise RuntimeError("WEBHOOK_DELIVERY_QUEUE_URL is not set")
    return url


def expires() -> int:
    return int(time.time()) + RETENTION_SECONDS


def _metric(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# ------------------------------------------------------------------ fan-out


def wants(endpoint: Mapping[str, Any], event_type: str, segment_id: str | None) -> bool:
    if endpoint.get("state") != "active" or event_type not in (endpoint.get("events") or []):
        return False
    segments = endpoint.get("segment_ids") or []
    return not segments or segment_id in segments


def new_message(endpoint: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """The first delivery message of `event` to `endpoint`."""
    webhook_id = str(endpoint["webhook_id"])
    return {
        "org_id": endpoint["org_id"],
        "webhook_id": webhook_id,
        "delivery_id": wire.message_id(webhook_id, str(event["event_id"])),
        "event_id": event["event_id"],
        "event_at": event["at"],
        "event": {k: event.get(k) for k in ("type", "at", "data")},  # carried: no read per delivery
        "attempt": 0,
        "first_at": iso(now()),
    }


def enqueue(messages: Sequence[Mapping[str, Any]]) -> None:
    """Onto the delivery queue, 10 a call; what the queue refuses raises Retryable (the caller's
    message comes again: a delivery may then be sent twice, under one webhook-id)."""
    if not messages:
        return
    sent = queues.send_batch(_queue_url(), [(str(i), json.dumps(m)) for i, m in enumerate(messages)])
    if sent.failed:
        raise errors.Retryable("The delivery queue refused messages")


def event_of(envelope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored form of a bus event (EventBridge's envelope): None for what is not a segment event."""
    event_type = wire.TYPES.get(str(envelope.get("detail-type")))
    detail = envelope.get("detail")
    if event_type is None or not isinstance(detail, dict) or not detail.get("org_id") or not detail.get("event_id"):
        return None
    try:
        at = instant(str(envelope.get("time")))
    except ValueError:
        at = iso(now())
    return {
        "org_id": str(detail["org_id"]),
        "event_id": str(detail["event_id"]),
        "at": at,
        "type": event_type,
        "segment_id": detail.get("segment_id"),
        "data": detail,
        "expires_at": expires(),
    }


def fan_out(body: str) -> int:
    """One bus event (an SQS body holding EventBridge's envelope): the deliveries it makes."""
    envelope = json.loads(body)
    event = event_of(envelope) if isinstance(envelope, dict) else None
    if event is None:
        kind = envelope.get("detail-type") if isinstance(envelope, dict) else type(envelope).__name__
        logger.warning("not a segment event; ignored", extra={"detail_type": str(kind)})
        return 0
    endpoints = store.list_for_org(event["org_id"])
    if not endpoints:
        return 0
    store.put_org_events([event])
    messages = [new_message(e, event) for e in endpoints if wants(e, event["type"], event.get("segment_id"))]
    enqueue(messages)
    if messages:
        _metric("WebhookDeliveriesQueued", len(messages))
    return len(messages)


# ------------------------------------------------------------------ one delivery


def _requeue(message: Mapping[str, Any], wait: float) -> None:
    """Back onto the queue, visible after `wait` seconds; a longer wait is done in hops of 900 s."""
    wait = max(0.0, wait)
    body = dict(message)
    if wait > SQS_DELAY_MAX:
        body["not_before"] = time.time() + wait
    else:
        body.pop("not_before", None)
    queues.send(_queue_url(), body, delay_seconds=int(min(SQS_DELAY_MAX, round(wait))))


def retry_wait(step: int) -> float:
    return aws.spread(step, JITTER)


def _keys(endpoint: Mapping[str, Any]) -> list[bytes]:
    """HMAC keys of the endpoint's live secrets, newest first."""
    stamp = iso(now())
    live = [s for s in endpoint.get("secrets") or [] if not s.get("expires_at") or s["expires_at"] > stamp]
    live.sort(key=lambda s: s.get("created_at", ""), reverse=True)
    org_id, webhook_id = str(endpoint["org_id"]), str(endpoint["webhook_id"])
    return [webhook_secrets.key_bytes(webhook_secrets.decrypt(org_id, webhook_id, s["ciphertext"])) for s in live]


def _record(
    message: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    state: str,
    answer: outbound.Answer | None,
    next_at: str | None = None,
) -> None:
    stamp = iso(now())
    attempt_no = int(message["attempt"]) + (1 if answer else 0)
    delivery = {
        "webhook_id": message["webhook_id"],
        "delivery_id": message["delivery_id"],
        "event_id": message["event_id"],
        "event_at": message["event_at"],
        "type": (event or {}).get("type"),
        "state": state,
        "attempts": attempt_no,
        "created_at": message["first_at"],
        "updated_at": stamp,
        "last_status_code": answer.status if answer else None,
        "last_error": answer.error if answer else None,
        "next_attempt_at": next_at,
        "expires_at": expires(),
    }
    attempt = None
    if answer is not None:
        attempt = {
            "webhook_id": message["webhook_id"],
            "delivery_id": message["delivery_id"],
            "event_id": message["event_id"],
            "type": delivery["type"],
            "attempt": attempt_no,
            "at": stamp,
            "status_code": answer.status,
            "latency_ms": answer.latency_ms,
            "error": answer.error,
            "outcome": state,
            "expires_at": expires(),
        }
    store.record_attempt(delivery, attempt)


def _event(message: Mapping[str, Any]) -> dict[str, Any] | None:
    carried = message.get("event")
    if isinstance(carried, dict):
        return carried
    return store.get_org_event(str(message["org_id"]), str(message["event_at"]), str(message["event_id"]))


def _window() -> int:
    return sum(get_settings().webhook_retry_schedule) + 3600


def _seconds_since(stamp: str) -> float:
    return (now() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)).total_seconds()


def deliver(body: str) -> str:
    """One delivery message; what happened: delivered, retrying, failed, deferred, waiting or dropped."""
    message: dict[str, Any] = json.loads(body)
    settings = get_settings()
    if float(message.get("not_before") or 0) > time.time() + 1:
        _requeue(message, float(message["not_before"]) - time.time())
        return "waiting"
    org_id, webhook_id = str(message["org_id"]), str(message["webhook_id"])
    endpoint = store.get(org_id, webhook_id, consistent=False)
    if endpoint is None:
        logger.info("webhook deleted; its delivery is dropped", extra={"webhook_id": webhook_id})
        return "dropped"
    event = _event(message)
    if event is None:
        logger.warning("event no longer kept; delivery dropped", extra={"delivery_id": message["delivery_id"]})
        return "dropped"
    if endpoint.get("state") != "active" and not message.get("manual"):  # a ping still goes: a fix can be tested
        _record(message, event, "failed", None)
        _metric("WebhookDeliveriesFailed")
        return "failed"
    paused = float(endpoint.get("paused_until") or 0)
    if paused and not message.get("manual"):
        if paused > time.time() or not store.update_if(
            org_id,
            webhook_id,
            "SET paused_until = :probe",
            "paused_until = :seen",
            probe=int(time.time() + settings.webhook_timeout_seconds) + 5,
            seen=endpoint["paused_until"],
        ):
            if _seconds_since(str(message["first_at"])) > _window():
                _record(message, event, "failed", None)
                _metric("WebhookDeliveriesFailed")
                return "failed"
            _requeue(message, aws.spread(max(2.0, paused - time.time() + 1), 0.5))  # the pause, spread
            _metric("WebhookDeliveriesDeferred")
            return "deferred"
    answer = attempt(endpoint, message, event)
    return _after(endpoint, message, event, answer)


def attempt(endpoint: Mapping[str, Any], message: Mapping[str, Any], event: Mapping[str, Any]) -> outbound.Answer:
    settings = get_settings()
    try:
        target = outbound.check_url(str(endpoint["url"]), allow_private=settings.webhook_allow_private_urls)
    except outbound.Refused as exc:
        return outbound.Answer(None, 0, f"refused: {exc}")
    assert target is not None
    payload = wire.body(str(event["type"]), str(event["at"]), event["data"])
    headers = wire.headers(str(message["delivery_id"]), int(time.time()), payload, _keys(endpoint))
    timeout = settings.webhook_timeout_seconds
    slow = threading.Timer(SLOW_AFTER, _hold_while_slow, args=(endpoint, timeout))
    slow.daemon = True
    slow.start()
    try:
        return outbound.post(target, payload, headers, timeout)
    finally:
        slow.cancel()


def _hold_while_slow(endpoint: Mapping[str, Any], timeout: float) -> None:
    """An answer not there after SLOW_AFTER: the endpoint's other deliveries wait (`paused_until`,
    the end of this attempt's timeout) instead of each taking a timeout of its own; this attempt's
    outcome then clears the pause (an answer) or sets the schedule's (none). One write, for slow
    endpoints only."""
    until = int(time.time() + timeout) + 1
    try:
        store.update_if(
            str(endpoint["org_id"]),
            str(endpoint["webhook_id"]),
            "SET paused_until = :until",
            "attribute_not_exists(paused_until) OR paused_until < :until",
            until=until,
        )
    except Exception:  # noqa: BLE001 - a missed hold costs only time, never a delivery
        logger.warning("could not hold a slow endpoint's deliveries", extra={"webhook_id": endpoint.get("webhook_id")})


def _after(
    endpoint: Mapping[str, Any], message: dict[str, Any], event: Mapping[str, Any], answer: outbound.Answer
) -> str:
    settings = get_settings()
    org_id, webhook_id = str(message["org_id"]), str(message["webhook_id"])
    log = {"webhook_id": webhook_id, "delivery_id": message["delivery_id"], "attempt": int(message["attempt"]) + 1}
    if answer.ok:
        _record(message, event, "delivered", answer)
        held = answer.latency_ms >= SLOW_AFTER * 1000  # _hold_while_slow may have paused it meanwhile
        if endpoint.get("failing_since") or endpoint.get("paused_until") or held:
            store.update_if(org_id, webhook_id, "REMOVE failing_since, paused_until, failures")
        _metric("WebhookDeliveriesDelivered")
        logger.info("webhook delivered", extra={**log, "status_code": answer.status, "latency_ms": answer.latency_ms})
        return "delivered"
    schedule = settings.webhook_retry_schedule
    paused_until: int | None = None
    if answer.status is None and schedule:  # no answer: pause the endpoint, longer after each such failure
        step = schedule[min(int(endpoint.get("failures") or 0), len(schedule) - 1)]
        paused_until = int(time.time()) + step
    failed = store.mark_failing(org_id, webhook_id, iso(now()), paused_until)
    logger.info("webhook attempt failed", extra={**log, "status_code": answer.status, "error": answer.error})
    if failed and _seconds_since(str(failed["failing_since"])) >= settings.webhook_disable_after_seconds:
        disable(endpoint, str(failed["failing_since"]))
        _record(message, event, "failed", answer)
        _metric("WebhookDeliveriesFailed")
        return "failed"
    done = int(message["attempt"]) + 1
    if done > len(schedule):
        _record(message, event, "failed", answer)
        _metric("WebhookDeliveriesFailed")
        return "failed"
    wait = retry_wait(schedule[done - 1])
    next_at = iso(datetime.fromtimestamp(time.time() + wait, UTC))
    _record(message, event, "retrying", answer, next_at)
    _requeue({**message, "attempt": done}, wait)
    _metric("WebhookDeliveriesRetried")
    return "retrying"


def disable(endpoint: Mapping[str, Any], failing_since: str) -> None:
    """Active -> disabled (once), and `Webhook Endpoint Disabled` on the bus."""
    org_id, webhook_id = str(endpoint["org_id"]), str(endpoint["webhook_id"])
    stamp = iso(now())
    if not store.update_if(
        org_id,
        webhook_id,
        "SET #state = :disabled, disabled_at = :at, disabled_reason = :why",
        "#state = :active",
        names={"#state": "state"},
        disabled="disabled",
        active="active",
        at=stamp,
        why="failing",
    ):
        return
    _metric("WebhookEndpointsDisabled")
    logger.warning("webhook endpoint disabled", extra={"webhook_id": webhook_id, "failing_since": failing_since})
    detail = {
        "org_id": org_id,
        "webhook_id": webhook_id,
        "url": endpoint.get("url"),
        "failing_since": failing_since,
        "disabled_at": stamp,
    }
    if bus.put([bus.Entry("segments", DISABLED_EVENT, detail)]):
        logger.error("Webhook Endpoint Disabled not published", extra={"webhook_id": webhook_id})
