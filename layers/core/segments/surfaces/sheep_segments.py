"""SheepCRM route for creating segments (docs/api.md#sheepcrm-create), and what the SheepCRM routes share: the bucket
check, uids, the field rules of a segment's body. Updates, deletes and restores are in
sheep_manage.py; the reads in sheep_reads.py."""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from segments import errors
from segments.models import DESCRIPTION_MAX, Actor, NewSegment, clean_name, storable_segment
from segments.rules import RULES_MAX, Rule
from segments.store import limits
from segments.store.segments import SegmentRecord
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, actor, dumps, parse_json, run_idempotent
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
URIS_MAX = 1000
URI_MAX = 256
TAGS_MAX = 100
TAG_MAX = 100
VIEW_CONTEXT_MAX = 20
SYSTEM_SEGMENT = "system segments are made by operators only (segments-admin create-system-segment)"

_Uri = Annotated[str, Field(min_length=1, max_length=URI_MAX)]
SegmentUid = Annotated[str, Path(description="The segment's uid (32 hex)")]  # a route's {uid}
FIELDSET_ID_MAX = 64
UNTITLED = "Untitled segment "  # + the uid: the name of a segment created without one


class SheepCreateBody(BaseModel):
    """The seed's fields. Any of them may come as query parameters instead (the body wins).
    Booleans are JSON true/false only (in a query string: true or false)."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(
        default=None, description=f"Optional: without one the segment is named '{UNTITLED}<its uid>'"
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    segment_type: SegmentTypeName = "dynamic"
    view_context: list[ViewContext] = Field(default_factory=list, max_length=VIEW_CONTEXT_MAX)
    parent_segment: str | None = Field(default=None, max_length=URI_MAX, description='"" or null: a root')
    active: StrictBool = True
    rules: list[Rule] = Field(
        default_factory=list, max_length=RULES_MAX, description=f"At most {RULES_MAX} rules, each value at most 16 KB"
    )
    uris_include: list[_Uri] = Field(default_factory=list, max_length=URIS_MAX)
    uris_exclude: list[_Uri] = Field(default_factory=list, max_length=URIS_MAX)
    resource_type: ResourceType
    system_segment: StrictBool = Field(default=False, description="Only false: system segments are made by operators")
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_MAX)]] = Field(
        default_factory=list, max_length=TAGS_MAX
    )
    mailchimp_sync: StrictBool = False
    fieldset_id: str | None = Field(
        default=None,
        max_length=FIELDSET_ID_MAX,
        description="[ours] A fieldset's uid (`/fieldset`): the person-record fields the Mailchimp sync sends as "
        'merge fields (default first_name, last_name); "" or null: none; 404 when the bucket has no such fieldset',
    )

    @field_validator("parent_segment", "fieldset_id")
    @classmethod
    def _root(cls, value: str | None) -> str | None:
        return value or None  # "": none, as a segment without one reads

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
    """The body as sent: `resource_type` may come from the query string instead."""

    resource_type: ResourceType | None = None  # type: ignore[assignment]


_LIST_FIELDS = {"view_context", "uris_include", "uris_exclude", "tags"}
_BOOL_FIELDS = {"active", "system_segment", "mailchimp_sync"}
_BOOLS = {"true": True, "false": False}


def _rules_of(values: list[str]) -> list[Any]:
    """`rules` from the query string: each value a JSON array of rules or one rule (the key
    repeated once a rule, OpenAPI's default for an array)."""
    rules: list[Any] = []
    for value in values:
        try:
            parsed = parse_json(value, "Invalid 'rules':")
        except json.JSONDecodeError as exc:
            raise errors.ValidationFailed("Invalid 'rules': must be a JSON array of rules, or one rule") from exc
        rules.extend(parsed if isinstance(parsed, list) else [parsed])
    return rules


def _from_query(params: dict[str, str | list[str] | None]) -> dict[str, Any]:
    """Query parameters as the body's types. An array parameter may repeat its key
    (tags=a&tags=b) or join its items with commas (tags=a,b), or both; rules are JSON; booleans
    are true or false."""
    out: dict[str, Any] = {}
    for name, given in params.items():
        if given is None:
            continue
        values = [given] if isinstance(given, str) else given
        if name in _LIST_FIELDS:
            out[name] = [v.strip() for value in values for v in value.split(",") if v.strip()]
        elif name == "rules":
            out[name] = _rules_of(values)
        elif len(values) != 1:
            raise errors.ValidationFailed(f"Invalid '{name}': give it once")
        elif name in _BOOL_FIELDS:
            out[name] = _BOOLS.get(values[0], values[0])  # anything else fails as a non-boolean
        else:
            out[name] = values[0]
    return out


def check_uris(bucket: str, body: BaseModel) -> None:
    """uris_include / uris_exclude name records of the caller's bucket."""
    person = re.compile(rf"^/{re.escape(bucket)}/[a-z_]+/[A-Za-z0-9-]{{1,64}}/$")
    for name in ("uris_include", "uris_exclude"):
        for uri in getattr(body, name, None) or ():
            if not person.match(uri):
                raise errors.ValidationFailed(
                    f"Invalid '{name}': {uri!r} is not a URI of bucket {bucket} (/{bucket}/<resource_type>/<uid>/)"
                )


def bucket_actor(bucket: str) -> Actor:
    """The caller, who must hold a key of `bucket` (the gateway's cached policy checks it too)."""
    who = actor()
    if who.bucket != bucket:
        raise errors.Forbidden(f"This token does not grant access to bucket {bucket}")
    return who


def segment_id_of_uid(uid: str) -> str:
    """A segment id from a uid (the UUID's 32-char hex; any UUID form is accepted); anything else
    names no segment (404)."""
    return usecase.segment_id_or_404(uid)


def sheep_body(segment: SegmentRecord) -> dict[str, Any]:
    """A segment rendered for the SheepCRM surface, numbers as JSON numbers again."""
    rendered = render(segment)
    return {**rendered, "rules": limits.plain(rendered["rules"])}


create_routes = Routes()

_q = Annotated[str | None, Query()]
_qs = Annotated[
    list[str] | None, Query(description="An array: repeat the key (a=x&a=y), or join the items with commas")
]


@create_routes.post(
    "/segments/v2/<bucket>/create",
    summary="Segments - Create a new segment",
    description="Creates a segment. Fields come from the JSON body or from query parameters (the body wins). "
    "`resource_type` is required; `name` is optional (without one the segment is named 'Untitled segment "
    "<its uid>'), `segment_type` defaults to dynamic, `active` to true. Each type uses its own "
    "fields: static `uris_include`; dynamic `rules`; hybrid `rules`, `uris_include`, `uris_exclude`; auxiliary "
    "none (400 otherwise). `parent_segment` must be a live segment of the bucket. A rule or uri based segment "
    "starts with `build_state` building (definition_version 1).",
    responses={
        201: {"description": "The segment created", "content": {JSON: {"model": SheepSegment}}},
        **error_responses(400, 401, 403, 404, 409, 500, 503),
    },
    security=SECURITY,
    tags=["SheepCRM segments"],
)
def create_segment(
    bucket: str,
    body: Annotated[SheepCreateInput | None, Body()] = None,
    name: _q = None,
    description: _q = None,
    segment_type: _q = None,
    view_context: _qs = None,
    parent_segment: _q = None,
    active: _q = None,
    rules: _qs = None,
    uris_include: _qs = None,
    uris_exclude: _qs = None,
    resource_type: _q = None,
    system_segment: _q = None,
    tags: _qs = None,
    mailchimp_sync: _q = None,
    fieldset_id: _q = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    query = _from_query(
        dict(
            name=name,
            description=description,
            segment_type=segment_type,
            view_context=view_context,
            parent_segment=parent_segment,
            active=active,
            rules=rules,
            uris_include=uris_include,
            uris_exclude=uris_exclude,
            resource_type=resource_type,
            system_segment=system_segment,
            tags=tags,
            mailchimp_sync=mailchimp_sync,
            fieldset_id=fieldset_id,
        )
    )
    given = body.model_dump(exclude_unset=True) if body is not None else {}
    try:
        request = SheepCreateBody.model_validate({**query, **given})
    except ValidationError as exc:
        raise errors.ValidationFailed(field_message(exc.errors(include_url=False))) from exc
    check_uris(bucket, request)
    fields = request.model_dump(exclude={"rules", "name"})
    rules_given = [r.model_dump() for r in request.rules]

    def segment_named(segment_name: str) -> NewSegment:
        try:
            return storable_segment(NewSegment(source="sheepcrm", name=segment_name, **fields, rules=rules_given))
        except limits.LimitExceeded as exc:
            raise errors.ValidationFailed(exc.describe()) from exc

    # checked before anything runs; an unnamed one with a name as long as the one it will get
    new = segment_named(request.name or UNTITLED + "0" * 32)

    def run() -> dict[str, Any]:
        try:
            if request.name is not None:
                return sheep_body(usecase.create_segment(who, new))
            segment_id = str(uuid.uuid4())
            untitled = segment_named(UNTITLED + uuid.UUID(segment_id).hex)
            return sheep_body(usecase.create_segment(who, untitled, segment_id=segment_id))
        except errors.NameTaken as exc:
            raise errors.Conflict(f"A segment named {exc.name!r} already exists in bucket {bucket}") from exc

    # fieldset_id joins the payload only when set, so a create without it hashes as it always did
    unset = None if new.fieldset_id else {"fieldset_id"}
    payload = limits.plain({"bucket": bucket, **new.model_dump(exclude=unset), "name": request.name})
    rendered = run_idempotent("sheep_create_segment", payload, run)
    return Response(status_code=201, content_type=JSON, body=dumps(rendered))
