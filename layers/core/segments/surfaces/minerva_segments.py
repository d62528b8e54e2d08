"""Minerva routes for segments: creation (docs/api.md#minerva-create), metadata (docs/api.md#minerva-segment-metadata).

Route sets, one per function of template.yaml: `create_routes` (CreateSegmentFunction), `query_routes`
(list and get, SegmentQueryFunction) and `manage_routes` (PATCH and DELETE, SegmentManageFunction).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from segments import errors
from segments.models import DESCRIPTION_MAX, NewSegment, clean_name, storable_segment
from segments.store import limits
from segments.store.segments import SegmentRecord
from segments.surfaces import minerva
from segments.surfaces.app import Routes
from segments.surfaces.http import actor, ok_schema, request_id, run_idempotent
from segments.timefmt import iso, now
from segments.usecases import segments as usecase

FIELDSET_ID_MAX = 64
create_routes = Routes()
query_routes = Routes()
manage_routes = Routes()


class CreateSegmentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[StrictStr, Field(description="Unique in the organisation; 1-255 characters after trimming")]
    description: Annotated[StrictStr | None, Field(max_length=DESCRIPTION_MAX)] = None
    mailchimp_sync: StrictBool = Field(
        default=False, description="Keep the members in a static segment of this name in the org's Mailchimp audience"
    )
    fieldset_id: Annotated[
        StrictStr | None,
        Field(
            max_length=FIELDSET_ID_MAX,
            description="A fieldset's uid (SheepCRM `/fieldset`): the person-record fields the Mailchimp sync sends "
            "as merge fields (default first_name, last_name); 404 when the org has no such fieldset",
        ),
    ] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)  # ValueError -> 422 naming the field


class CreateSegmentResponse(BaseModel):
    api_request_id: str
    segment_id: str
    request_completed_at: str


@create_routes.post(
    "/v2/segments/create",
    summary="Create a segment",
    description="Creates an empty segment (`current_size` 0, `source` api). Names are unique per org.",
    responses={
        200: {"description": "Created"},
        **minerva.error_responses(
            401, 404, 409, 422, 500, 503, notes={404: "The name is already used in this org (the seed's status)"}
        ),
    },
    security=minerva.SECURITY,
    tags=["Segments"],
)
def create_segment(body: Annotated[CreateSegmentBody, Body()]) -> CreateSegmentResponse:
    who = actor()
    # mailchimp_sync and fieldset_id join the payload only when set, so a create without them hashes
    # as it always did
    payload = body.model_dump(exclude={name for name in ("mailchimp_sync", "fieldset_id") if not getattr(body, name)})
    try:
        new = storable_segment(
            NewSegment(
                name=body.name,
                description=body.description,
                source="api",
                segment_type="static",
                mailchimp_sync=body.mailchimp_sync,
                fieldset_id=body.fieldset_id,
            )
        )
    except limits.LimitExceeded as exc:
        raise errors.ValidationFailed(exc.describe()) from exc

    def run() -> dict[str, Any]:
        segment = usecase.create_segment(who, new)
        return {"api_request_id": request_id(), "segment_id": segment.segment_id, "request_completed_at": iso(now())}

    return CreateSegmentResponse(**run_idempotent("create_segment", payload, run))


@create_routes.route(
    "/v2/segments/create",
    method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def create_wrong_method():
    return minerva.error(405, "Method Not Allowed", headers={"Allow": "POST"})


@create_routes.route(
    "/v1/segments/create",
    method=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def create_v1():
    return minerva.error(404, "Segments create endpoint only supports v2 API version")


# ------------------------------------------------------------------ metadata (docs/api.md#minerva-segment-metadata)

SEGMENT_PATH = "/v2/segments/<segment_id>"
READ_NOTES = {404: minerva.SEGMENT_NOT_FOUND, 422: "Validation error (a bad parameter or cursor)"}
MANAGE_NOTES = {
    403: "System segments can't be edited or deleted",
    404: minerva.SEGMENT_NOT_FOUND + "; or, for a rename, `Segment name <name> already exists`",
    422: "Validation error, or an Idempotency-Key reused with a different body",
}
MANAGE_ERRORS = minerva.error_responses(401, 403, 404, 409, 422, 500, 503, notes=MANAGE_NOTES)


class SegmentView(BaseModel):
    """A segment as served: its stored fields without storage internals."""

    model_config = ConfigDict(extra="allow")

    segment_id: str
    name: str
    description: str | None = None
    source: str
    segment_type: str
    current_size: int
    created_at: str
    updated_at: str
    definition_version: int = Field(default=1, description="+ 1 whenever the membership definition changes")
    build_state: str = Field(
        default="ready",
        description="building while the rebuild engine applies a new "
        "definition; reads serve the membership as it converges",
    )


class SegmentResponse(SegmentView):
    api_request_id: str


class UpdatedSegmentResponse(SegmentResponse):
    request_completed_at: str


class SegmentList(BaseModel):
    items: list[SegmentView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end")


class SegmentListResponse(BaseModel):
    api_request_id: str
    results: SegmentList


class DeletedSegmentResponse(BaseModel):
    api_request_id: str
    segment_id: str
    record_state: str
    deleted_at: str
    request_completed_at: str


class PatchSegmentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Optional but not nullable: absent keeps the name, null is refused (422).
    name: StrictStr = Field(default=None, description="New name, unique in the organisation; 1-255 characters")  # type: ignore[assignment]
    description: Annotated[StrictStr | None, Field(max_length=DESCRIPTION_MAX, description="null clears it")] = None
    mailchimp_sync: StrictBool = Field(default=None, description="Start (true) or stop (false) the Mailchimp sync")  # type: ignore[assignment]
    fieldset_id: Annotated[
        StrictStr | None,
        Field(
            max_length=FIELDSET_ID_MAX,
            description="The fieldset whose fields the Mailchimp sync sends as merge fields; null clears it "
            "(first_name, last_name again); 404 when the org has no such fieldset",
        ),
    ] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)


def _listed(values: tuple[Any, ...] | None) -> list[Any] | None:
    return None if values is None else list(values)


def segment_view(s: SegmentRecord) -> dict[str, Any]:
    """A segment as this surface serves it, field by field: each one the segment holds (None: not
    stored, not served). An attribute of the item that is not rendered here is not served."""
    fields = {
        "segment_id": s.segment_id,
        "org_id": s.org_id,
        "bucket": s.bucket,
        "name": s.name,
        "description": s.description,
        "source": s.source,
        "segment_type": s.segment_type,
        "resource_type": s.resource_type,
        "rules": _listed(s.rules),
        "tags": _listed(s.tags),
        "parent_segment": s.parent_segment,
        "uris_include": _listed(s.uris_include),
        "uris_exclude": _listed(s.uris_exclude),
        "view_context": _listed(s.view_context),
        "active": s.active,
        "system_segment": s.system_segment,
        "mailchimp_sync": s.mailchimp_sync,
        "fieldset_id": s.fieldset_id,
        "current_size": s.current_size,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "record_state": s.record_state,
        "deleted_at": s.deleted_at,
        "created_by_request": s.created_by_request,
        "definition_version": s.definition_version,
        "build_state": s.build_state,
        "build_progress": s.build_progress,
    }
    return {name: value for name, value in fields.items() if value is not None}


@query_routes.get(
    "/v2/segments",
    summary="List segments",
    description="The organisation's segments, newest first.",
    responses={**ok_schema(SegmentListResponse), **minerva.error_responses(401, 422, 500, 503, notes=READ_NOTES)},
    security=minerva.SECURITY,
    tags=["Segments"],
)
def list_segments(
    cursor: Annotated[str | None, Query(max_length=2048, description="Opaque; from `next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Segments a page (default 50)")] = 50,
):
    items, next_cursor = usecase.list_segments(actor(), cursor=cursor, limit=limit)
    return minerva.ok({"results": {"items": [segment_view(s) for s in items], "next_cursor": next_cursor}})


@query_routes.get(
    SEGMENT_PATH,
    summary="Get a segment",
    description="The segment's metadata and its exact `current_size`.",
    responses={**ok_schema(SegmentResponse), **minerva.error_responses(401, 404, 500, 503, notes=READ_NOTES)},
    security=minerva.SECURITY,
    tags=["Segments"],
)
def get_segment(segment_id: Annotated[str, Path(description="The segment")]):
    return minerva.ok(segment_view(usecase.get_segment(actor(), segment_id)))


@manage_routes.patch(
    SEGMENT_PATH,
    summary="Rename a segment, change its description, turn its Mailchimp sync on or off, choose its fieldset",
    description="Names stay unique per organisation (a taken name answers like create: 404 "
    "`Segment name <name> already exists`). Header `Idempotency-Key` makes a retry return "
    "the first response. Returns the updated segment.",
    responses={**ok_schema(UpdatedSegmentResponse), **MANAGE_ERRORS},
    security=minerva.SECURITY,
    tags=["Segments"],
)
def patch_segment(
    segment_id: Annotated[str, Path(description="The segment")],
    body: Annotated[PatchSegmentBody, Body()],
):
    who = actor()
    changes = body.model_dump(include=body.model_fields_set)
    if not changes:
        given = ", ".join(f"'{name}'" for name in PatchSegmentBody.model_fields)
        raise errors.ValidationFailed(f"Nothing to update: give at least one of {given}")

    def run() -> dict[str, Any]:
        segment = usecase.update_segment(who, segment_id, changes)
        return {"api_request_id": request_id(), **segment_view(segment), "request_completed_at": iso(now())}

    return minerva.ok(run_idempotent("update_segment", {"segment_id": segment_id, **changes}, run))


@manage_routes.delete(
    SEGMENT_PATH,
    summary="Delete a segment",
    description="Soft delete: the name is free again; the segment, its members and its history are no "
    "longer served (404). Header `Idempotency-Key` makes a retry return the first response.",
    responses={**ok_schema(DeletedSegmentResponse), **MANAGE_ERRORS},
    security=minerva.SECURITY,
    tags=["Segments"],
)
def delete_segment(segment_id: Annotated[str, Path(description="The segment")]):
    who = actor()

    def run() -> dict[str, Any]:
        deleted = usecase.delete_segment(who, segment_id)
        return {
            "api_request_id": request_id(),
            "segment_id": deleted.segment_id,
            "record_state": deleted.record_state,
            "deleted_at": deleted.deleted_at,
            "request_completed_at": iso(now()),
        }

    return minerva.ok(run_idempotent("delete_segment", {"segment_id": segment_id}, run))
