"""Minerva routes for signals (docs/api.md#signals): deaths, job changes and relocations of a segment's current
members, newest first (SignalsApiFunction)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from segments.surfaces import minerva
from segments.surfaces.app import Routes
from segments.surfaces.http import actor, ok_schema
from segments.usecases import signal_reads
from segments.usecases.signal_reads import SignalType

signals_routes = Routes()

TAGS = ["Signals"]
NOTES = {
    404: "Segment not found: unknown, deleted, or another organisation's",
    422: "Validation error: a missing or bad parameter, `since` after `until`, or a cursor not made "
    "by this endpoint for this segment and window",
}
ERRORS = minerva.error_responses(401, 404, 422, 500, 503, notes=NOTES)
TIME = "YYYY-MM-DDTHH:MM:SS.ffffffZ"


class DeathMetadata(BaseModel):
    source: str | None
    obituary_url: str | None
    publication_name: str | None
    confidence_score: float | None


class Death(BaseModel):
    minerva_pid: str
    obituary_id: str | None
    date_of_death: str | None = Field(description="YYYY-MM-DD")
    publication_last_update_date: str | None = Field(description="YYYY-MM-DD")
    first_observed_at: str = Field(description=TIME)
    signal_metadata: DeathMetadata


class Metadata(BaseModel):
    source: str | None
    confidence_score: float | None


class JobChange(BaseModel):
    minerva_pid: str
    signal_id: str
    previous_employer: str | None
    previous_title: str | None
    new_employer: str | None
    new_title: str | None
    effective_date: str | None = Field(description="YYYY-MM-DD")
    first_observed_at: str = Field(description=TIME)
    signal_metadata: Metadata


class Location(BaseModel):
    city: str | None = None
    region: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


class Relocation(BaseModel):
    minerva_pid: str
    signal_id: str
    previous_location: Location | None
    new_location: Location | None
    effective_date: str | None = Field(description="YYYY-MM-DD")
    first_observed_at: str = Field(description=TIME)
    signal_metadata: Metadata


class DeathsResponse(BaseModel):
    api_request_id: str
    results: list[Death]
    next_cursor: str | None = Field(default=None, description="Present when more remain: pass as `cursor`")


class JobChangesResponse(BaseModel):
    api_request_id: str
    results: list[JobChange]
    next_cursor: str | None = Field(default=None, description="Present when more remain: pass as `cursor`")


class RelocationsResponse(BaseModel):
    api_request_id: str
    results: list[Relocation]
    next_cursor: str | None = Field(default=None, description="Present when more remain: pass as `cursor`")


DESCRIPTION = (
    "One entry per signal of a **current** member, whenever that member joined (a member removed "
    "is not served). Newest first by `first_observed_at`; `since`/`until` bound it (ISO-8601 with a "
    "zone, inclusive); `limit` a page (1-1,000, default 1,000); when more remain the response has "
    "`next_cursor`, to pass as `cursor` with the same `since`/`until`."
)

SegmentId = Annotated[UUID, Query(description="The segment")]
Since = Annotated[str | None, Query(max_length=64, description="Earliest first_observed_at (inclusive)")]
Until = Annotated[str | None, Query(max_length=64, description="Latest first_observed_at (inclusive)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Signals a page (default 1,000)")]
Cursor = Annotated[str | None, Query(max_length=2048, description="Opaque; from `next_cursor`")]


def _answer(
    signal_type: SignalType, segment_id: UUID, since: str | None, until: str | None, limit: int, cursor: str | None
) -> Any:
    found = signal_reads.list_signals(
        actor(), str(segment_id), signal_type, since=since, until=until, limit=limit, cursor=cursor
    )
    body: dict[str, Any] = {"results": found["results"]}
    if found["next_cursor"]:
        body["next_cursor"] = found["next_cursor"]
    return minerva.ok(body)


@signals_routes.get(
    "/v2/segments/signals/deaths",
    summary="Deaths among a segment's members",
    description=DESCRIPTION,
    responses={**ok_schema(DeathsResponse), **ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def deaths(segment_id: SegmentId, since: Since = None, until: Until = None, limit: Limit = 1000, cursor: Cursor = None):
    return _answer("death", segment_id, since, until, limit, cursor)


@signals_routes.get(
    "/v2/segments/signals/job_changes",
    summary="Job changes among a segment's members",
    description=DESCRIPTION,
    responses={**ok_schema(JobChangesResponse), **ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def job_changes(
    segment_id: SegmentId, since: Since = None, until: Until = None, limit: Limit = 1000, cursor: Cursor = None
):
    return _answer("job_change", segment_id, since, until, limit, cursor)


@signals_routes.get(
    "/v2/segments/signals/relocations",
    summary="Relocations among a segment's members",
    description=DESCRIPTION,
    responses={**ok_schema(RelocationsResponse), **ERRORS},
    security=minerva.SECURITY,
    tags=TAGS,
)
def relocations(
    segment_id: SegmentId, since: Since = None, until: Until = None, limit: Limit = 1000, cursor: Cursor = None
):
    return _answer("relocation", segment_id, since, until, limit, cursor)
