"""SheepCRM reads (docs/api.md#sheepcrm-listings): the bucket's segments (active, all, found by name,
in a view context), its trees, a segment's count and its member records. Segment listings answer
the vendor's `all` shape, `{"segments": [...]}`, with 1-based paging data beside it: `count` (every
match), `page`, `page_size`, `next_page` (null on the last page)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from segments import errors
from segments.models import NAME_MAX
from segments.surfaces.app import Routes
from segments.surfaces.http import ok_schema
from segments.surfaces.sheep import (
    SECURITY,
    SEGMENT_NOT_FOUND,
    SURFACE,
    VIEW_CONTEXTS,
    SheepSegment,
    error_responses,
    ok,
    uri_of,
)
from segments.surfaces.sheep_segments import SegmentUid, bucket_actor, segment_id_of_uid, sheep_body
from segments.timefmt import sheep_time
from segments.usecases import member_reads
from segments.usecases import segments as usecase
from segments.usecases.segment_tree import Node

read_routes = Routes()

BASE = "/segments/v2/<bucket>"
TAGS = ["SheepCRM segments"]
PAGE_SIZE_MAX = 200
PAGE_MAX = 1_000_000
LIST_ERRORS = error_responses(
    400,
    401,
    403,
    404,
    500,
    503,
    notes={400: "Validation error (a bad `page`, `page_size` or `name`)", 404: "No such endpoint"},
)
SEGMENT_ERRORS = error_responses(
    400, 401, 403, 404, 500, 503, notes={400: "Validation error (a bad `page` or `page_size`)", 404: SEGMENT_NOT_FOUND}
)

_Page = Annotated[int, Query(ge=1, le=PAGE_MAX, description="1-based page (default 1)")]
_PageSize = Annotated[
    int, Query(ge=1, le=PAGE_SIZE_MAX, description=f"Items a page (default 50, at most {PAGE_SIZE_MAX})")
]


class Page(BaseModel):
    count: int = Field(description="Every match, on all pages")
    page: int
    page_size: int
    next_page: int | None = Field(description="The next page's number; null on the last page")


class SegmentPage(Page):
    segments: list[SheepSegment] = Field(description="The vendor's key: this page's segments")


class SheepSegmentList(BaseModel):
    segments: list[SheepSegment]


class SheepMember(BaseModel):
    uri: str = Field(description="The person's uri, /{bucket}/person/{pid}/")
    minerva_pid: str
    first_added_at: str = Field(description="YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC)")


class SheepMemberPage(Page):
    segment: str = Field(description="The segment's uri")
    results: list[SheepMember]


class TreeNode(SheepSegment):
    children: list[TreeNode] = Field(description="[ours] The segment's children (full segments), by name")


class Trees(BaseModel):
    segments: list[TreeNode] = Field(description="The roots, by name, each with its descendants under children")


class Count(BaseModel):
    count: int = Field(description="The segment's current number of members")
    description: str = Field(description='The segment\'s description ("" when none)')
    segment: str = Field(description="The segment's uri")
    build_state: str = Field(description="[ours] building while the rebuild engine applies a new definition")


def _segments(bucket: str, *, include_inactive: bool, name: str | None, page: int, page_size: int) -> Response[Any]:
    found = usecase.browse(
        bucket_actor(bucket), include_inactive=include_inactive, name_contains=name, page=page, page_size=page_size
    )
    return ok(
        {
            "segments": [sheep_body(s) for s in found.items],
            "count": found.count,
            "page": found.page,
            "page_size": found.page_size,
            "next_page": found.next_page,
        }
    )


@read_routes.get(
    BASE,
    summary="Segments - List active segments",
    description="The bucket's active segments (`active` true, not deleted), by name (case-insensitive).",
    responses={**ok_schema(SegmentPage), **LIST_ERRORS},
    security=SECURITY,
    tags=TAGS,
)
def list_active(bucket: str, page: _Page = 1, page_size: _PageSize = 50) -> Response[Any]:
    return _segments(bucket, include_inactive=False, name=None, page=page, page_size=page_size)


@read_routes.get(
    BASE + "/all",
    summary="Segments - List all segments",
    description="The bucket's segments, inactive ones (`active` false) included, by name. Deleted segments are "
    "not listed (restore one by its uid).",
    responses={**ok_schema(SegmentPage), **LIST_ERRORS},
    security=SECURITY,
    tags=TAGS,
)
def list_all(bucket: str, page: _Page = 1, page_size: _PageSize = 50) -> Response[Any]:
    return _segments(bucket, include_inactive=True, name=None, page=page, page_size=page_size)


@read_routes.get(
    BASE + "/find",
    summary="Segments - Find segments by name",
    description="Segments (active or not, not deleted) whose name contains `name`, compared as uniqueness "
    "compares names (trimmed, NFC, case-folded), by name.",
    responses={**ok_schema(SegmentPage), **LIST_ERRORS},
    security=SECURITY,
    tags=TAGS,
)
def find(
    bucket: str,
    name: Annotated[str, Query(min_length=1, max_length=NAME_MAX, description="Part of the name")],
    page: _Page = 1,
    page_size: _PageSize = 50,
) -> Response[Any]:
    return _segments(bucket, include_inactive=True, name=name, page=page, page_size=page_size)


@read_routes.get(
    BASE + "/trees",
    summary="Segments - Segment trees",
    description="The hierarchy of auxiliary segments and segments with a `parent_segment`, in the vendor's "
    'shape `{"segments": [...]}`: the roots by name, each a full segment with its descendants under '
    "`children` (by name). A segment whose parent is deleted is a root.",
    responses={**ok_schema(Trees), **error_responses(401, 403, 404, 500, 503, notes={404: "No such endpoint"})},
    security=SECURITY,
    tags=TAGS,
)
def trees(bucket: str) -> Response[Any]:
    roots = usecase.trees(bucket_actor(bucket))
    out: list[dict[str, Any]] = []
    # (node, the list its rendering joins): iterative, as deep as the trees are
    stack: list[tuple[Node, list[dict[str, Any]]]] = [(node, out) for node in reversed(roots)]
    while stack:
        node, into = stack.pop()
        rendered = {**sheep_body(node.segment), "children": []}
        into.append(rendered)
        stack.extend((child, rendered["children"]) for child in reversed(node.children))
    return ok({"segments": out})


@read_routes.get(
    BASE + "/segment/<uid>/count",
    summary="Segments - Count a segment's records",
    description="`count` is the segment's current number of members (exact); while `build_state` is building it "
    "follows the membership as the rebuild converges.",
    responses={**ok_schema(Count), **error_responses(401, 403, 404, 500, 503, notes={404: SEGMENT_NOT_FOUND})},
    security=SECURITY,
    tags=TAGS,
)
def count(bucket: str, uid: SegmentUid) -> Response[Any]:
    who = bucket_actor(bucket)
    segment = usecase.get_segment(who, segment_id_of_uid(uid))
    return ok(
        {
            "count": segment.current_size or 0,
            "description": segment.description or "",
            "segment": uri_of(bucket, segment.segment_id),
            "build_state": segment.build_state,
        }
    )


@read_routes.get(
    BASE + "/segment/<uid>/all",
    summary="Segments - A segment's records",
    description="The segment's members as person records (`/{bucket}/person/{pid}/`), in PID order; past the "
    "end `results` is empty.",
    responses={**ok_schema(SheepMemberPage), **SEGMENT_ERRORS},
    security=SECURITY,
    tags=TAGS,
)
def members(
    bucket: str,
    uid: SegmentUid,
    page: _Page = 1,
    page_size: _PageSize = 50,
) -> Response[Any]:
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    found = member_reads.list_members(who, segment_id, page=page, cursor=None, page_size=page_size)
    return ok(
        {
            "count": found["total_count"],
            "page": page,
            "page_size": page_size,
            "next_page": page + 1 if found["list_continues"] else None,
            "segment": uri_of(bucket, segment_id),
            "results": [
                {
                    "uri": f"/{bucket}/person/{m['minerva_pid']}/",
                    "minerva_pid": m["minerva_pid"],
                    "first_added_at": sheep_time(m["first_added_at"]),
                }
                for m in found["items"]
            ],
        }
    )


# Path words of the vendor's own routes under /segments/v2/{bucket}: never a view context, they
# answer as an unrouted path does (404), as before this route existed.
RESERVED = frozenset({"all", "find", "trees", "create", "fieldset", "segment"})


@read_routes.get(
    BASE + "/<view_context>",
    summary="Segments - Segments of a view context",
    description="The bucket's segments (active or not, not deleted) whose `view_context` holds the one given, by "
    "name, in the vendor's list shape. A value outside the vendor's enumeration is a 400; the vendor's own "
    "path words (create, fieldset, segment) are 404 as any unrouted path.",
    responses={**ok_schema(SheepSegmentList), **LIST_ERRORS},
    security=SECURITY,
    tags=TAGS,
)
def view_context_segments(
    bucket: str,
    view_context: Annotated[
        str,
        Path(description="One of the vendor's view contexts", json_schema_extra={"enum": sorted(VIEW_CONTEXTS)}),
    ],
) -> Response[Any]:
    who = bucket_actor(bucket)
    if view_context in RESERVED:
        return SURFACE.no_route()
    if view_context not in VIEW_CONTEXTS:
        raise errors.ValidationFailed(
            f"Invalid 'view_context': {view_context!r} is not one of {', '.join(sorted(VIEW_CONTEXTS))}"
        )
    return ok({"segments": [sheep_body(s) for s in usecase.in_view_context(who, view_context)]})
