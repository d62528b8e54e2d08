"""Minerva routes for members (docs/api.md#minerva-surface): add, remove, list, memberships and history.

Three route sets, one per function of template.yaml: `add_routes` (AddMembersFunction),
`remove_routes` (RemoveMembersFunction) and `members_routes` (the reads, SegmentQueryFunction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from segments.models import PID_RE
from segments.surfaces import minerva
from segments.surfaces.app import Routes
from segments.surfaces.http import actor, idempotency_key, ok_schema, request_id, run_idempotent
from segments.timefmt import iso, now
from segments.usecases import member_reads, members

add_routes = Routes()
remove_routes = Routes()
members_routes = Routes()

TAGS = ["Members"]
WRITE_NOTES = {
    404: minerva.SEGMENT_NOT_FOUND,
    413: "More than MAX_PIDS_PER_REQUEST PIDs (default 10,000) or a body over 6 MB; nothing was changed",
    422: "Validation error, or an Idempotency-Key reused with a different body",
    503: "The store is throttling, or another update of this segment's members outlasted the wait; nothing is "
    "lost: retry after Retry-After seconds with the same Idempotency-Key",
}
READ_NOTES = {404: minerva.SEGMENT_NOT_FOUND, 422: "Validation error (a bad parameter or cursor)"}
WRITE_ERRORS = minerva.error_responses(401, 404, 409, 413, 422, 500, 503, notes=WRITE_NOTES)


# ------------------------------------------------------------------ wire models


class MembersBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    segment_id: Annotated[UUID, Field(description="The segment to change")]
    minerva_pids: Annotated[
        list[StrictStr],
        Field(
            description="PIDs (`p-` + 1-64 letters or digits); duplicates count once; at most "
            "MAX_PIDS_PER_REQUEST (default 10,000), else 413"
        ),
    ]


class AddResults(BaseModel):
    invalid_minerva_pids: list[str]
    n_redundant_additions: int
    n_added: int
    new_current_size: int


class AddMembersResponse(BaseModel):
    api_request_id: str
    results: AddResults
    request_completed_at: str


class RemoveResults(BaseModel):
    invalid_minerva_pids: list[str]
    n_deleted: int
    new_current_size: int


class RemoveMembersResponse(BaseModel):
    api_request_id: str
    results: RemoveResults
    request_completed_at: str


class Member(BaseModel):
    minerva_pid: str
    first_added_at: str


class MembersPage(BaseModel):
    items: list[Member]
    total_count: int = Field(description="The segment's current_size")
    page: int | None = Field(description="The page asked for; null when paging by cursor")
    list_continues: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end")


class ListMembersResponse(BaseModel):
    api_request_id: str
    results: MembersPage


class Membership(BaseModel):
    segment_id: str
    name: str
    first_added_at: str
    last_added_at: str


class Memberships(BaseModel):
    minerva_pid: str
    items: list[Membership]


class MembershipsResponse(BaseModel):
    api_request_id: str
    results: Memberships


class HistoryEntry(BaseModel):
    minerva_pid: str
    change: str = Field(description="added | removed")
    at: str
    api_request_id: str = Field(description="The request that made the change")
    reason: str


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None


class HistoryResponse(BaseModel):
    api_request_id: str
    results: HistoryPage


# ------------------------------------------------------------------ add / remove


@add_routes.post(
    "/v2/segments/members/add",
    summary="Add members to a segment",
    description="Adds PIDs; already-members are counted as redundant (their `last_added_at` is updated); "
    "invalid PIDs are listed and the rest still succeed. Counts are exact under concurrent calls. "
    "Header `Idempotency-Key` makes a retry return the first response.",
    responses={**ok_schema(AddMembersResponse), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def add_members(body: Annotated[MembersBody, Body()]):
    return _change(
        "add_members",
        body,
        members.add_members,
        lambda done: {
            "invalid_minerva_pids": done.invalid_minerva_pids,
            "n_redundant_additions": done.n_redundant,
            "n_added": done.n_changed,
            "new_current_size": done.new_current_size,
        },
    )


@remove_routes.post(
    "/v2/segments/members/remove",
    summary="Remove members from a segment",
    description="Removes PIDs; `n_deleted` counts only PIDs that were members. The membership's history "
    "is kept (a later re-add restores its `first_added_at`). Header `Idempotency-Key` as for add.",
    responses={**ok_schema(RemoveMembersResponse), **WRITE_ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def remove_members(body: Annotated[MembersBody, Body()]):
    return _change(
        "remove_members",
        body,
        members.remove_members,
        lambda done: {
            "invalid_minerva_pids": done.invalid_minerva_pids,
            "n_deleted": done.n_changed,
            "new_current_size": done.new_current_size,
        },
    )


def _change(
    operation: str, body: MembersBody, apply: Callable[..., Any], results: Callable[[Any], dict[str, Any]]
) -> Any:
    """Apply a membership change once per Idempotency-Key and answer in Minerva's shape."""
    who, segment_id = actor(), str(body.segment_id)

    def run() -> dict[str, Any]:
        done = apply(who, segment_id, body.minerva_pids, idempotency_key=idempotency_key())
        return {"api_request_id": request_id(), "results": results(done), "request_completed_at": iso(now())}

    payload = {"segment_id": segment_id, "minerva_pids": body.minerva_pids}
    return minerva.ok(run_idempotent(operation, payload, run))


# ------------------------------------------------------------------ reads


@members_routes.get(
    "/v2/segments/members",
    summary="List a segment's members",
    description="Members in `minerva_pid` order, 5,000 a page. `page` is 1-based (past the end `items` is "
    "empty); or pass `cursor` (from `next_cursor`) instead, which costs the same at any depth.",
    responses={**ok_schema(ListMembersResponse), **minerva.error_responses(401, 404, 422, 500, 503, notes=READ_NOTES)},
    security=minerva.SECURITY,
    tags=TAGS,
)
def list_members(
    segment_id: Annotated[UUID, Query(description="The segment")],
    page: Annotated[int | None, Query(ge=1, description="1-based page (default 1)")] = None,
    cursor: Annotated[str | None, Query(max_length=2048, description="Opaque; from `next_cursor`")] = None,
):
    results = member_reads.list_members(actor(), str(segment_id), page=page, cursor=cursor)
    return minerva.ok({"results": results})


@members_routes.get(
    "/v2/segments/memberships",
    summary="The segments that hold a PID",
    description="The organisation's live segments of which the PID is a member now, with "
    "`first_added_at` and `last_added_at`.",
    responses={**ok_schema(MembershipsResponse), **minerva.error_responses(401, 422, 500, 503, notes=READ_NOTES)},
    security=minerva.SECURITY,
    tags=TAGS,
)
def memberships(
    minerva_pid: Annotated[str, Query(pattern=PID_RE.pattern, description="The person's PID")],
):
    items = member_reads.memberships(actor(), minerva_pid)
    return minerva.ok({"results": {"minerva_pid": minerva_pid, "items": items}})


@members_routes.get(
    "/v2/segments/<segment_id>/history",
    summary="A segment's membership ledger",
    description="One entry per PID and change (`added` | `removed`), oldest first, with the request that "
    "made it. Redundant additions are not changes and are not listed.",
    responses={**ok_schema(HistoryResponse), **minerva.error_responses(401, 404, 422, 500, 503, notes=READ_NOTES)},
    security=minerva.SECURITY,
    tags=TAGS,
)
def history(
    segment_id: Annotated[str, Path(description="The segment")],
    cursor: Annotated[str | None, Query(max_length=2048, description="Opaque; from `next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries a page (default 100)")] = 100,
):
    results = member_reads.history(actor(), segment_id, cursor=cursor, limit=limit)
    return minerva.ok({"results": results})
