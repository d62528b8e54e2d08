"""The SheepCRM wire format: `/segments/v2/{bucket}/...`, `{"error", "description", "type"}` errors,
times without a zone, segments addressed by `uid` (the UUID's hex) and `uri`."""

from __future__ import annotations

import uuid
from typing import Any, Literal, cast, get_args

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, Field

from segments import errors
from segments.models import BuildState
from segments.observability import MetricUnit, logger, metrics
from segments.store.segments import SegmentRecord
from segments.surfaces.http import JSON, dumps, rate_limited_response
from segments.timefmt import sheep_time

SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]
# The 404 of a route under /segment/{uid} (its OpenAPI text).
SEGMENT_NOT_FOUND = "No such segment in this bucket (unknown, deleted, another bucket's, or a malformed uid)"

ViewContext = Literal[
    "comments",
    "crm",
    "documents",
    "events",
    "forms",
    "giving",
    "membership",
    "minimal_membership_directory",
    "reservations",
    "teams",
    "vehicles",
]
VIEW_CONTEXTS: frozenset[str] = frozenset(get_args(ViewContext))
ResourceType = Literal[
    "achievement",
    "booking",
    "comment",
    "contact",
    "duplicates",
    "form_response",
    "group",
    "group_member",
    "journal",
    "membership",
    "message",
    "organisation",
    "page_document",
    "payment",
    "person",
    "reservation",
    "sheep_event",
    "vehicle",
]
SegmentTypeName = Literal["dynamic", "static", "hybrid", "auxiliary"]

# status, type and concise text for each domain error kind
KINDS: dict[str, tuple[int, str, str]] = {
    "validation": (400, "validation_error", "Validation error"),
    "too_large": (413, "validation_error", "Request too large"),
    "not_found": (404, "not_found", "Segment not found"),  # "Not found" alone: no such endpoint
    "conflict": (409, "conflict", "Conflict"),
    "forbidden": (403, "permission_denied", "Forbidden"),
    "unauthorized": (401, "authentication_error", "Unauthorized"),
    "unavailable": (503, "internal_error", "Service unavailable"),
    "too_many": (429, "rate_limited", "Too many requests"),
}


class ErrorBody(BaseModel):
    error: str = Field(description="A concise error message")
    description: str = Field(description="A human readable description of the error")
    type: Literal[
        "authentication_error",
        "permission_denied",
        "not_found",
        "validation_error",
        "conflict",
        "internal_error",
        "rate_limited",
    ]


def error_responses(*statuses: int, notes: dict[int, str] | None = None) -> dict[int, Any]:
    """OpenAPI `responses=` entries for the error statuses a route returns (`notes` overrides texts)."""
    text = {
        400: "Validation error (names the field and, for enumerations, the allowed values)",
        401: "Missing or unknown bearer token",
        403: "The token belongs to another bucket",
        404: "Not found (no such endpoint, e.g. a bucket that is not a valid handle)",
        409: "A segment with this name already exists",
        429: "Too many exports running for this bucket's organisation; retry when one has finished",
        500: "Internal error",
        503: "The store is busy; retry after Retry-After seconds",
    }
    text.update(notes or {})
    responses: dict[int, Any] = {
        s: {"description": text[s], "content": {JSON: {"schema": {"$ref": "#/components/schemas/SheepErrorBody"}}}}
        for s in statuses
    }
    return {**responses, 429: rate_limited_response("SheepErrorBody")}


def error(status: int, kind: str, concise: str, description: str, headers: dict[str, str] | None = None) -> Response:
    metrics.add_metric(name=f"Errors{status}", unit=MetricUnit.Count, value=1)
    body = {"error": concise, "description": description, "type": kind}
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers or {})


def ok(body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    """A 200 with `body` as JSON."""
    return Response(status_code=200, content_type=JSON, body=dumps(body), headers=headers or {})


def field_message(errs: list[Any]) -> str:
    first = errs[0] if errs else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    field = ".".join(loc) or "request"
    if first.get("type") == "json_invalid" or (first.get("type") == "model_attributes_type" and not loc):
        return "The request body must be a JSON object"
    if first.get("type") == "missing":
        return f"'{field}' is required"
    msg = str(first.get("msg", "invalid value"))
    return f"Invalid '{field}': {msg.removeprefix('Value error, ')}"


class _Sheep:
    """Every failure in SheepCRM's `{error, description, type}` body."""

    def invalid_request(self, errs: list[Any]) -> Response:
        return error(400, "validation_error", "Validation error", field_message(errs))

    def unsupported_body(self) -> Response:
        return error(400, "validation_error", "Validation error", "The request body must be a JSON object")

    def busy(self, exc: errors.Retryable) -> Response:
        return error(
            503, "internal_error", "Service unavailable", exc.message, headers={"Retry-After": str(exc.retry_after)}
        )

    def domain(self, exc: errors.DomainError) -> Response:
        if exc.kind not in KINDS:
            logger.error("unmapped domain error", extra={"kind": exc.kind})
            return self.internal()
        status, kind, concise = KINDS[exc.kind]
        return error(status, kind, concise, exc.message)

    def no_route(self) -> Response:
        return error(404, "not_found", "Not found", "No such endpoint")

    def idempotency_key_reused(self) -> Response:
        return error(
            400,
            "validation_error",
            "Idempotency-Key reused",
            "Idempotency-Key was already used with a different request body",
        )

    def idempotency_in_progress(self) -> Response:
        return error(
            409,
            "conflict",
            "Request in progress",
            "A request with this Idempotency-Key is still in progress",
            headers={"Retry-After": "1"},
        )

    def internal(self) -> Response:
        return error(500, "internal_error", "Internal server error", "An unexpected error occurred")


SURFACE = _Sheep()


# ------------------------------------------------------------------ wire shapes


def uid_of(segment_id: str) -> str:
    return uuid.UUID(segment_id).hex


def uri_of(bucket: str, segment_id: str) -> str:
    return f"/{bucket}/segment/{uid_of(segment_id)}/"


class UserInterface(BaseModel):
    can_create_segment: bool
    can_delete_segment: bool
    can_edit_segment: bool
    can_restore_segment: bool
    policy_name: str


class SheepSegment(BaseModel):
    """The vendor's `single_segment`: every field present, none null (a missing text is "")."""

    active: bool = Field(description="false for an inactive segment, and for a deleted one")
    created: str = Field(description="YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC)")
    description: str = Field(description='"" when the segment has none')
    display_value: str
    last_updated: str
    legacy_uid: str = Field(description='Always "": segments made here have no legacy uid')
    mailchimp_sync: bool
    name: str
    parent_segment: str = Field(description='The parent\'s uri; "" for a root')
    record_state: str
    resource_type: str
    rules: list[dict[str, Any]]
    segment_type: str
    system_segment: bool
    tags: list[str]
    uid: str
    uri: str
    uris_exclude: list[str]
    uris_include: list[str]
    user_interface: UserInterface
    view_context: list[str]
    build_state: Literal["building", "ready"] = Field(
        description="ready: the membership is complete for definition_version; building: the rebuild engine is "
        "applying a new definition (reads serve the membership as it converges)"
    )
    definition_version: int = Field(
        description="1 at create, + 1 whenever segment_type, rules, uris_include or uris_exclude change"
    )
    build_progress: Any = Field(default=None, description="Present while building, when the rebuild engine reports it")
    fieldset_id: str = Field(
        default="", description='[ours] The fieldset the Mailchimp sync takes its merge fields from; "" for none'
    )


def render(s: SegmentRecord) -> dict[str, Any]:
    """A stored segment in SheepCRM's shape (whichever surface created it), field by field; what
    the segment does not hold reads as a segment made here without it would (`active` true, lists
    empty, `static`, `person` ...). An attribute of the item that is not rendered here is not served."""
    system = bool(s.system_segment)
    deleted = s.record_state == "deleted"
    rendered = SheepSegment(
        active=s.active is not False and not deleted,
        created=sheep_time(s.created_at or ""),
        description=s.description or "",
        display_value=s.name,
        last_updated=sheep_time(s.updated_at or ""),
        legacy_uid="",
        mailchimp_sync=bool(s.mailchimp_sync),
        name=s.name,
        parent_segment=s.parent_segment or "",
        record_state=s.record_state or "active",
        resource_type=s.resource_type or "person",
        rules=list(s.rules or ()),
        segment_type=s.segment_type or "static",
        system_segment=system,
        tags=list(s.tags or ()),
        uid=uid_of(s.segment_id),
        uri=uri_of(s.bucket or "", s.segment_id),
        uris_exclude=list(s.uris_exclude or ()),
        uris_include=list(s.uris_include or ()),
        user_interface=UserInterface(
            can_create_segment=True,
            can_delete_segment=not system,
            can_edit_segment=not system,
            can_restore_segment=deleted,
            policy_name="system" if system else "bucket_key",
        ),
        view_context=list(s.view_context or ()),
        build_state=cast(BuildState, s.build_state or "ready"),
        definition_version=1 if s.definition_version is None else s.definition_version,
        build_progress=s.build_progress,
        fieldset_id=s.fieldset_id or "",
    ).model_dump(exclude_none=False)
    if rendered["build_progress"] is None:
        del rendered["build_progress"]
    return rendered
