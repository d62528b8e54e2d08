"""Minerva routes for segment creation (POST /v2/segments/create and its wrong-method answers)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from segments import logic
from segments.models import DESCRIPTION_MAX, NewSegment, clean_name
from segments.surfaces import minerva
from segments.surfaces.http import caller, request_id, run_idempotent
from segments.timefmt import iso, now

create_router = Router()


class CreateSegmentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[StrictStr, Field(description="Unique in the organisation; 1-255 characters after trimming")]
    description: Annotated[StrictStr | None, Field(max_length=DESCRIPTION_MAX)] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)  # ValueError -> 422 naming the field


class CreateSegmentResponse(BaseModel):
    api_request_id: str
    segment_id: str
    request_completed_at: str


@create_router.post(
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
    who = caller()
    payload = body.model_dump()

    def run() -> dict[str, Any]:
        segment = logic.create_segment(
            who, NewSegment(name=body.name, description=body.description, source="api", segment_type="static")
        )
        return {"api_request_id": request_id(), "segment_id": segment.segment_id,
                "request_completed_at": iso(now())}

    return CreateSegmentResponse(**run_idempotent("create_segment", payload, run))


@create_router.route(
    "/v2/segments/create",
    method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def create_wrong_method():
    return minerva.error(405, "Method Not Allowed", headers={"Allow": "POST"})


@create_router.route(
    "/v1/segments/create",
    method=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
def create_v1():
    return minerva.error(404, "Segments create endpoint only supports v2 API version")
