"""SheepCRM routes that change a segment [ours, docs/api.md#sheepcrm-update]: PUT (update), DELETE (soft delete)
and POST .../restore, under /segments/v2/{bucket}/segment/{uid}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from segments import errors
from segments.models import DESCRIPTION_MAX, Actor, clean_name
from segments.rules import Rule
from segments.store import limits
from segments.store.segments import SegmentRecord
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, dumps, ok_schema, run_idempotent
from segments.surfaces.sheep import (
    SECURITY,
    SEGMENT_NOT_FOUND,
    SegmentTypeName,
    SheepSegment,
    ViewContext,
    error_responses,
)
from segments.surfaces.sheep_segments import (
    FIELDSET_ID_MAX,
    RULES_MAX,
    TAG_MAX,
    TAGS_MAX,
    URI_MAX,
    URIS_MAX,
    VIEW_CONTEXT_MAX,
    SegmentUid,
    bucket_actor,
    check_uris,
    segment_id_of_uid,
    sheep_body,
)
from segments.usecases import segments as usecase

manage_routes = Routes()

SEGMENT_PATH = "/segments/v2/<bucket>/segment/<uid>"
TAGS = ["SheepCRM segments"]
FORBIDDEN = "The token belongs to another bucket, or the segment is a system segment (can't be edited or deleted)"
_Uri = Annotated[str, Field(min_length=1, max_length=URI_MAX)]
_Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX)]


class SheepUpdateBody(BaseModel):
    """The fields to change; absent ones are kept. `description`, `parent_segment` and `fieldset_id`
    may be null (cleared; "" too, as a segment without them reads); no other field may be null. A segment as
    returned by GET may be sent back whole:
    its read-only fields (uid, uri, created, build_state ...) are ignored, and `resource_type` /
    `system_segment` must be unchanged."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, description="Unique in the bucket; 1-255 characters")
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX, description="null clears it")
    segment_type: SegmentTypeName | None = None
    rules: list[Rule] | None = Field(default=None, max_length=RULES_MAX)
    tags: list[_Tag] | None = Field(default=None, max_length=TAGS_MAX)
    uris_include: list[_Uri] | None = Field(default=None, max_length=URIS_MAX)
    uris_exclude: list[_Uri] | None = Field(default=None, max_length=URIS_MAX)
    parent_segment: str | None = Field(default=None, max_length=URI_MAX, description='null or "" makes it a root')
    active: StrictBool | None = Field(default=None, description="true or false (JSON booleans only)")
    view_context: list[ViewContext] | None = Field(default=None, max_length=VIEW_CONTEXT_MAX)
    mailchimp_sync: StrictBool | None = None
    fieldset_id: str | None = Field(
        default=None,
        max_length=FIELDSET_ID_MAX,
        description='[ours] The fieldset whose fields the Mailchimp sync sends as merge fields; null or "" clears '
        "it; 404 when the bucket has no such fieldset",
    )
    resource_type: str | None = Field(default=None, description="Can't change: must equal the stored value")
    system_segment: StrictBool | None = Field(default=None, description="Can't change: must equal the stored value")

    @field_validator("parent_segment", "fieldset_id")
    @classmethod
    def _root(cls, value: str | None) -> str | None:
        return value or None  # "" (how a root, or a segment without a fieldset, reads) clears it as null does

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else clean_name(value)

    @field_validator("view_context", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


_NULLABLE = {"description", "parent_segment", "fieldset_id"}


def _changes(bucket: str, body: SheepUpdateBody | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(changes for the use case, fields that must equal the stored ones), validated."""
    if body is None:
        raise errors.ValidationFailed("The request body must be a JSON object")
    fields = body.model_dump(include=body.model_fields_set)
    for name, value in fields.items():
        if value is None and name not in _NULLABLE:
            raise errors.ValidationFailed(f"Invalid '{name}': may not be null")
    check_uris(bucket, body)
    if "rules" in fields:
        fields["rules"] = [r.model_dump() for r in body.rules or []]
    fixed: dict[str, Any] = {k: fields.pop(k) for k in ("resource_type", "system_segment") if k in fields}
    try:
        changes = {name: limits.storable(value, name) for name, value in fields.items()}
    except limits.LimitExceeded as exc:
        raise errors.ValidationFailed(exc.describe()) from exc
    if not changes and not fixed:
        raise errors.ValidationFailed("Nothing to update: give at least one field to change")
    return changes, fixed


IDEMPOTENCY_REFUSED = "Idempotency-Key invalid or reused with another request"


def _responses(answer: str, notes: dict[int, str]) -> dict[int, Any]:
    """The OpenAPI `responses=` of a route that answers the segment (200, described as `answer`)
    or one of the same error statuses (`notes` over this module's texts for 400 and 404)."""
    return {
        **ok_schema(SheepSegment, answer),
        **error_responses(
            400, 401, 403, 404, 409, 500, 503, notes={400: IDEMPOTENCY_REFUSED, 404: SEGMENT_NOT_FOUND, **notes}
        ),
    }


def _once(operation: str, payload: dict[str, Any], run: Callable[[], dict[str, Any]]) -> Response[Any]:
    """The segment ``run`` returns, run once per Idempotency-Key."""
    return Response(status_code=200, content_type=JSON, body=dumps(run_idempotent(operation, payload, run)))


def _record_action(
    operation: str, bucket: str, uid: str, action: Callable[[Actor, str], SegmentRecord]
) -> Response[Any]:
    """Delete or restore: ``action(who, segment_id)`` on the segment named by ``uid``."""
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    return _once(operation, {"bucket": bucket, "segment_id": segment_id}, lambda: sheep_body(action(who, segment_id)))


@manage_routes.put(
    SEGMENT_PATH,
    summary="Segments - Update a segment",
    description="Changes the fields given (a JSON body); absent fields are kept, `description` and "
    "`parent_segment` may be null. Names stay unique in the bucket (409; a case-only rename is "
    "fine). A changed definition (segment_type, rules, uris_include, uris_exclude) must fit the "
    "type, increases `definition_version` and sets `build_state` building for rule or uri based "
    "segments. A new parent must be a live segment of the bucket outside this segment's own tree "
    "(no cycles; at most 32 levels above it). A segment with members can't become auxiliary (409). "
    "System segments can't be edited (403). Header `Idempotency-Key` makes a retry return the "
    "first response.",
    responses=_responses(
        "The segment as updated",
        {
            400: "Validation error: a bad field, a definition that does not fit the type, a parent that "
            "is not a live segment of the bucket or would make a cycle, nothing to update",
            403: FORBIDDEN,
            409: "The name is used by another segment; the segment has members and can't become "
            "auxiliary; or a request with this Idempotency-Key is in progress",
        },
    ),
    security=SECURITY,
    tags=TAGS,
)
def update_segment(
    bucket: str,
    uid: SegmentUid,
    body: Annotated[SheepUpdateBody | None, Body()] = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    changes, fixed = _changes(bucket, body)

    def run() -> dict[str, Any]:
        if fixed:
            stored = usecase.get_segment(who, segment_id)
            held = {"resource_type": stored.resource_type, "system_segment": bool(stored.system_segment)}
            for name, value in fixed.items():
                if value != held[name]:
                    raise (
                        errors.Forbidden(usecase.SYSTEM_SEGMENT)
                        if name == "system_segment" and stored.system_segment
                        else errors.ValidationFailed(f"Invalid '{name}': it can't be changed")
                    )
            if not changes:
                if stored.system_segment:
                    raise errors.Forbidden(usecase.SYSTEM_SEGMENT)
                return sheep_body(stored)
        try:
            return sheep_body(usecase.update_segment(who, segment_id, changes))
        except errors.NameTaken as exc:
            raise errors.Conflict(f"A segment named {exc.name!r} already exists in bucket {bucket}") from exc

    payload = limits.plain({"bucket": bucket, "segment_id": segment_id, **changes, **fixed})
    return _once("sheep_update_segment", payload, run)


@manage_routes.delete(
    SEGMENT_PATH,
    summary="Segments - Delete a segment",
    description="Soft delete: `record_state` becomes deleted, the name is free again, and the segment is no "
    "longer listed or served (404) until restored. System segments can't be deleted (403). Header "
    "`Idempotency-Key` makes a retry return the first response.",
    responses=_responses(
        "The segment as deleted", {403: FORBIDDEN, 409: "A request with this Idempotency-Key is in progress"}
    ),
    security=SECURITY,
    tags=TAGS,
)
def delete_segment(
    bucket: str,
    uid: SegmentUid,
) -> Response[Any]:
    return _record_action("sheep_delete_segment", bucket, uid, usecase.delete_segment)


@manage_routes.post(
    SEGMENT_PATH + "/restore",
    summary="Segments - Restore a deleted segment",
    description="Back to `record_state` active, taking its name again in the same transaction: 409 when another "
    "segment has the name now (rename or delete that one first) or when the segment is not deleted. "
    "A rule or uri based segment is `build_state` building again. Header `Idempotency-Key` makes a "
    "retry return the first response.",
    responses=_responses(
        "The segment as restored",
        {
            404: "No such segment in this bucket (unknown, another bucket's, or a malformed uid)",
            409: "The name is used by another segment now; the segment is not deleted; or a request with "
            "this Idempotency-Key is in progress",
        },
    ),
    security=SECURITY,
    tags=TAGS,
)
def restore_segment(
    bucket: str,
    uid: SegmentUid,
) -> Response[Any]:
    return _record_action("sheep_restore_segment", bucket, uid, usecase.restore_segment)
