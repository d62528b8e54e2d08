"""SheepCRM routes for segments: create (§3.1); the other §3.3 endpoints join here."""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segments import errors, limits
from segments.models import DESCRIPTION_MAX, Actor, NewSegment, clean_name, storable_segment
from segments.rules import Rule
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, actor, parse_json, run_idempotent
from segments.surfaces.sheep import (
    SECURITY,
    ResourceType,
    SegmentTypeName,
    SheepSegment,
    ViewContext,
    error_responses,
    field_message,
    render,
)
from segments.usecases import segments as usecase

# Bounds of a create (docs/limits.md): each list and string is bounded, and the whole segment must
# still fit a DynamoDB item (400 KB), checked before anything is stored.
RULES_MAX = 100
URIS_MAX = 1000
URI_MAX = 256
TAGS_MAX = 100
TAG_MAX = 100
VIEW_CONTEXT_MAX = 20
SYSTEM_SEGMENT = "system segments are made by operators only (segments-admin create-system-segment)"

_Uri = Annotated[str, Field(min_length=1, max_length=URI_MAX)]


class SheepCreateBody(BaseModel):
    """The seed's fields. Any of them may come as query parameters instead (the body wins)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    segment_type: SegmentTypeName = "dynamic"
    view_context: list[ViewContext] = Field(default_factory=list, max_length=VIEW_CONTEXT_MAX)
    parent_segment: str | None = Field(default=None, max_length=URI_MAX)
    active: bool = True
    rules: list[Rule] = Field(default_factory=list, max_length=RULES_MAX,
                              description=f"At most {RULES_MAX} rules, each value at most 16 KB")
    uris_include: list[_Uri] = Field(default_factory=list, max_length=URIS_MAX)
    uris_exclude: list[_Uri] = Field(default_factory=list, max_length=URIS_MAX)
    resource_type: ResourceType
    system_segment: bool = Field(default=False, description="Only false: system segments are made by operators")
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_MAX)]] = Field(default_factory=list,
                                                                                max_length=TAGS_MAX)
    mailchimp_sync: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else clean_name(value)

    @field_validator("system_segment")
    @classmethod
    def _not_system(cls, value: bool) -> bool:
        if value:
            raise ValueError(SYSTEM_SEGMENT)
        return value

    @field_validator("view_context", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SheepCreateInput(SheepCreateBody):
    """The body as sent: `name` and `resource_type` may come from the query string instead."""

    name: str | None = None  # type: ignore[assignment]
    resource_type: ResourceType | None = None  # type: ignore[assignment]


_LIST_FIELDS = {"view_context", "uris_include", "uris_exclude", "tags"}


def _from_query(params: dict[str, str | None]) -> dict[str, Any]:
    """Query parameters as the body's types: lists comma-separated, rules as JSON."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if name in _LIST_FIELDS:
            out[name] = [v.strip() for v in value.split(",") if v.strip()]
        elif name == "rules":
            try:
                out[name] = parse_json(value, "Invalid 'rules':")
            except json.JSONDecodeError as exc:
                raise errors.ValidationFailed("Invalid 'rules': must be a JSON array of rules") from exc
        else:
            out[name] = value
    return out


def _check_uris(bucket: str, body: SheepCreateBody) -> None:
    person = re.compile(rf"^/{re.escape(bucket)}/[a-z_]+/[A-Za-z0-9-]{{1,64}}/$")
    for name in ("uris_include", "uris_exclude"):
        for uri in getattr(body, name):
            if not person.match(uri):
                raise errors.ValidationFailed(f"Invalid '{name}': {uri!r} is not a URI of bucket {bucket} "
                                              f"(/{bucket}/<resource_type>/<uid>/)")


def _check_parent(who: Actor, bucket: str, parent: str | None) -> None:
    if parent is None:
        return
    m = re.match(rf"^/{re.escape(bucket)}/segment/([0-9a-f]{{32}})/$", parent)
    try:
        if not m:
            raise errors.NotFound(usecase.SEGMENT_NOT_FOUND)
        usecase.live_record(who, str(uuid.UUID(m.group(1))))
    except errors.NotFound as exc:
        raise errors.ValidationFailed(
            f"Invalid 'parent_segment': {parent!r} is not a segment of bucket {bucket}") from exc


create_routes = Routes()

_q = Annotated[str | None, Query()]


@create_routes.post(
    "/segments/v2/<bucket>/create",
    summary="Segments - Create a new segment",
    description="Creates a segment. Fields come from the JSON body or from query parameters (the body wins). "
    "`resource_type` is required; `segment_type` defaults to dynamic, `active` to true.",
    responses={201: {"description": "The segment created"}, **error_responses(400, 401, 403, 404, 409, 500, 503)},
    security=SECURITY,
    tags=["SheepCRM segments"],
)
def create_segment(
    bucket: str,
    body: Annotated[SheepCreateInput | None, Body()] = None,
    name: _q = None,
    description: _q = None,
    segment_type: _q = None,
    view_context: _q = None,
    parent_segment: _q = None,
    active: _q = None,
    rules: _q = None,
    uris_include: _q = None,
    uris_exclude: _q = None,
    resource_type: _q = None,
    system_segment: _q = None,
    tags: _q = None,
    mailchimp_sync: _q = None,
) -> Response[SheepSegment]:
    who = actor()
    if who.bucket != bucket:
        raise errors.Forbidden(f"This token does not grant access to bucket {bucket}")
    query = _from_query(
        dict(name=name, description=description, segment_type=segment_type, view_context=view_context,
             parent_segment=parent_segment, active=active, rules=rules, uris_include=uris_include,
             uris_exclude=uris_exclude, resource_type=resource_type, system_segment=system_segment, tags=tags,
             mailchimp_sync=mailchimp_sync)
    )
    given = body.model_dump(exclude_unset=True) if body is not None else {}
    try:
        request = SheepCreateBody.model_validate({**query, **given})
    except ValidationError as exc:
        raise errors.ValidationFailed(field_message(exc.errors(include_url=False))) from exc
    _check_uris(bucket, request)
    new = NewSegment(source="sheepcrm", **request.model_dump(exclude={"rules"}),
                     rules=[r.model_dump() for r in request.rules])
    try:
        new = storable_segment(new)
    except limits.LimitExceeded as exc:
        raise errors.ValidationFailed(exc.describe()) from exc
    _check_parent(who, bucket, request.parent_segment)

    def run() -> dict[str, Any]:
        try:
            segment = render(usecase.create_segment(who, new))
        except errors.NameTaken as exc:
            raise errors.Conflict(f"A segment named {exc.name!r} already exists in bucket {bucket}") from exc
        return {**segment, "rules": limits.plain(segment["rules"])}  # numbers as JSON numbers again

    payload = limits.plain({"bucket": bucket, **new.model_dump()})
    rendered = run_idempotent("sheep_create_segment", payload, run)
    return Response(status_code=201, content_type=JSON, body=SheepSegment.model_validate(rendered))
