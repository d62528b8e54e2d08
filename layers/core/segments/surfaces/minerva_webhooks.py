"""Minerva routes for webhooks (docs/api.md#webhooks): an org's endpoints, their secrets, pings,
delivery attempts, redelivery and replay (WebhooksApiFunction)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator, model_validator

from segments import errors
from segments.events import webhooks as wire
from segments.surfaces import minerva
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, actor, run_idempotent
from segments.timefmt import instant
from segments.usecases import webhooks as usecase

webhook_routes = Routes()

TAGS = ["Webhooks"]
WEBHOOK_ID = re.compile(r"^wh_[0-9a-f]{32}$")
DELIVERY_ID = re.compile(r"^msg_[0-9a-f]{32}$")
NOTES = {
    404: "Webhook (or delivery) not found: unknown, deleted, or another organisation's",
    422: "Validation error: a bad field (a URL refused, an unknown event type), the webhook limit "
    "reached, or an Idempotency-Key reused with a different body",
}
WRITE_ERRORS = minerva.error_responses(401, 404, 409, 422, 500, 503, notes=NOTES)
READ_ERRORS = minerva.error_responses(401, 404, 422, 500, 503, notes=NOTES)
EventType = Literal["segment.signal.detected", "segment.membership.changed", "segment.export.finished"]
SegmentIds = Annotated[list[Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{32,36}$")]], Field(max_length=100)]


class CreateWebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[StrictStr, Field(min_length=1, max_length=2048, description="https URL that receives the POSTs")]
    events: Annotated[list[EventType], Field(min_length=1, description="Event types delivered")]
    segment_ids: SegmentIds = Field(default_factory=list, description="Only these segments' events (all if empty)")
    description: Annotated[StrictStr | None, Field(max_length=500)] = None


class PatchWebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[StrictStr, Field(min_length=1, max_length=2048)] = None  # type: ignore[assignment]
    events: Annotated[list[EventType], Field(min_length=1)] = None  # type: ignore[assignment]
    segment_ids: SegmentIds | None = None
    description: Annotated[StrictStr | None, Field(max_length=500)] = None
    enabled: StrictBool = Field(default=None, description="true re-enables a disabled webhook")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _not_null(self) -> PatchWebhookBody:
        for name in ("url", "events", "enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: StrictStr = Field(description="ISO-8601 with a zone, inclusive")
    until: StrictStr = Field(description="ISO-8601 with a zone, inclusive")

    @field_validator("since", "until")
    @classmethod
    def _time(cls, value: str) -> str:
        return instant(value, bare_date=True)

    @model_validator(mode="after")
    def _order(self) -> ReplayBody:
        if self.since > self.until:
            raise ValueError("since is after until")
        return self


class Webhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    segment_ids: list[str]
    description: str | None
    state: str = Field(description="active or disabled")
    created_at: str
    updated_at: str
    failing_since: str | None = Field(description="Set while every attempt fails")
    disabled_at: str | None
    secret_rotated_at: str | None


class WebhookResponse(Webhook):
    api_request_id: str


class CreatedWebhookResponse(WebhookResponse):
    secret: str = Field(description="whsec_...: shown once, in this response")


class WebhookListResponse(BaseModel):
    api_request_id: str
    results: list[Webhook]


class RotatedResponse(BaseModel):
    api_request_id: str
    webhook_id: str
    secret: str = Field(description="The new whsec_... secret: shown once")
    previous_secret_expires_at: str | None = Field(description="Until then the old secret signs too")


class Attempt(BaseModel):
    delivery_id: str
    event_id: str
    type: str | None
    attempt: int
    at: str
    status_code: int | None
    latency_ms: int | None
    error: str | None
    outcome: str = Field(description="delivered, retrying or failed")


class AttemptsResponse(BaseModel):
    api_request_id: str
    results: list[Attempt]
    next_cursor: str | None


class QueuedResponse(BaseModel):
    api_request_id: str
    webhook_id: str
    delivery_id: str | None = None
    event_id: str | None = None
    queued: int | bool | None = None
    next_since: str | None = None


def _ok(model: type[BaseModel], status: int = 200) -> dict[int, Any]:
    return {status: {"description": "OK", "content": {JSON: {"model": model}}}}


def _webhook_id(value: str) -> str:
    if not WEBHOOK_ID.fullmatch(value):
        raise errors.NotFound(usecase.NOT_FOUND)
    return value


WebhookIdPath = Annotated[str, Path(description="wh_ + 32 hex")]


@webhook_routes.post(
    "/v2/webhooks",
    summary="Register a webhook",
    description="Registers an endpoint for the org's events. The answer holds the signing secret "
    "(`whsec_...`), shown only here. Header `Idempotency-Key` makes a retry return the first response.",
    responses={**_ok(CreatedWebhookResponse, 201), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def create_webhook(body: Annotated[CreateWebhookBody, Body()]):
    who = actor()
    payload = body.model_dump()

    def run() -> dict[str, Any]:
        return usecase.register(who, body.url, body.events, body.segment_ids, body.description)

    return minerva.ok(usecase.reveal(who, run_idempotent("create_webhook", payload, run)), status=201)


@webhook_routes.get(
    "/v2/webhooks",
    summary="List webhooks",
    responses={**_ok(WebhookListResponse), **READ_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def list_webhooks():
    return minerva.ok({"results": usecase.list_all(actor())})


@webhook_routes.get(
    "/v2/webhooks/<webhook_id>",
    summary="Get a webhook",
    responses={**_ok(WebhookResponse), **READ_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def get_webhook(webhook_id: WebhookIdPath):
    return minerva.ok(usecase.get(actor(), _webhook_id(webhook_id)))


@webhook_routes.patch(
    "/v2/webhooks/<webhook_id>",
    summary="Change a webhook",
    description="Replaces the fields given; `enabled: true` re-enables a disabled webhook.",
    responses={**_ok(WebhookResponse), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def patch_webhook(webhook_id: WebhookIdPath, body: Annotated[PatchWebhookBody, Body()]):
    who = actor()
    changes = body.model_dump(include=body.model_fields_set)
    webhook_id = _webhook_id(webhook_id)

    def run() -> dict[str, Any]:
        return usecase.update(who, webhook_id, changes)

    return minerva.ok(run_idempotent("update_webhook", {"webhook_id": webhook_id, **changes}, run))


@webhook_routes.delete(
    "/v2/webhooks/<webhook_id>",
    summary="Delete a webhook",
    description="Deliveries still queued for it are dropped.",
    responses={**_ok(QueuedResponse), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def delete_webhook(webhook_id: WebhookIdPath):
    who = actor()
    webhook_id = _webhook_id(webhook_id)
    return minerva.ok(
        run_idempotent("delete_webhook", {"webhook_id": webhook_id}, lambda: usecase.delete(who, webhook_id))
    )


@webhook_routes.post(
    "/v2/webhooks/<webhook_id>/rotate-secret",
    summary="Rotate a webhook's secret",
    description="A new secret, shown once; the previous one keeps signing beside it (two `v1,` "
    "signatures) until `previous_secret_expires_at` (24 h by default).",
    responses={**_ok(RotatedResponse), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def rotate_secret(webhook_id: WebhookIdPath):
    who = actor()
    webhook_id = _webhook_id(webhook_id)
    result = run_idempotent(
        "rotate_webhook_secret", {"webhook_id": webhook_id}, lambda: usecase.rotate_secret(who, webhook_id)
    )
    return minerva.ok(usecase.reveal(who, result))


@webhook_routes.post(
    "/v2/webhooks/<webhook_id>/test",
    summary="Send a ping",
    description=f"Queues a `{wire.PING}` event to this webhook; its attempts appear under deliveries.",
    responses={**_ok(QueuedResponse, 202), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def test_webhook(webhook_id: WebhookIdPath):
    who = actor()
    webhook_id = _webhook_id(webhook_id)
    result = run_idempotent("test_webhook", {"webhook_id": webhook_id}, lambda: usecase.send_ping(who, webhook_id))
    return minerva.ok(result, status=202)


@webhook_routes.get(
    "/v2/webhooks/<webhook_id>/deliveries",
    summary="A webhook's delivery attempts",
    description="Newest first: time, status code, latency, error, outcome. `next_cursor` pages on.",
    responses={**_ok(AttemptsResponse), **READ_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def list_deliveries(
    webhook_id: WebhookIdPath,
    limit: Annotated[int, Query(ge=1, le=100, description="Attempts a page (default 50)")] = 50,
    cursor: Annotated[str | None, Query(max_length=2048, description="Opaque; from `next_cursor`")] = None,
):
    found = usecase.attempts(actor(), _webhook_id(webhook_id), limit, cursor)
    return minerva.ok({"results": found["items"], "next_cursor": found["next_cursor"]})


@webhook_routes.post(
    "/v2/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver",
    summary="Redeliver one delivery",
    description="Its event again, now, under the same `webhook-id`, with a fresh retry schedule.",
    responses={**_ok(QueuedResponse, 202), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def redeliver(webhook_id: WebhookIdPath, delivery_id: Annotated[str, Path(description="msg_ + 32 hex")]):
    who = actor()
    webhook_id = _webhook_id(webhook_id)
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise errors.NotFound("Delivery not found")
    result = run_idempotent(
        "redeliver_webhook",
        {"webhook_id": webhook_id, "delivery_id": delivery_id},
        lambda: usecase.redeliver(who, webhook_id, delivery_id),
    )
    return minerva.ok(result, status=202)


@webhook_routes.post(
    "/v2/webhooks/<webhook_id>/replay",
    summary="Replay a window of events",
    description=f"The org's events emitted between `since` and `until` (inclusive) that this webhook "
    f"wants, sent again (at most {usecase.REPLAY_MAX:,} a call; `next_since` continues).",
    responses={**_ok(QueuedResponse, 202), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def replay(webhook_id: WebhookIdPath, body: Annotated[ReplayBody, Body()]):
    who = actor()
    webhook_id = _webhook_id(webhook_id)
    payload = {"webhook_id": webhook_id, **body.model_dump()}
    result = run_idempotent("replay_webhook", payload, lambda: usecase.replay(who, webhook_id, body.since, body.until))
    return minerva.ok(result, status=202)
