"""The SheepCRM wire format: `/segments/v2/{bucket}/...`, `{"error", "description", "type"}` errors,
times without a zone, segments addressed by `uid` (the UUID's hex) and `uri`."""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segments import errors, logic, storage
from segments.models import DESCRIPTION_MAX, NewSegment, Segment, clean_name
from segments.observability import MetricUnit, logger, metrics
from segments.surfaces.http import JSON, caller, dumps, run_idempotent
from segments.timefmt import sheep_time

SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]

ViewContext = Literal[
    "comments", "crm", "documents", "events", "forms", "giving", "membership",
    "minimal_membership_directory", "reservations", "teams", "vehicles",
]
Operator = Literal[
    "and_list", "equals", "exact", "greater_than", "greater_than_or_equals", "less_than",
    "less_than_or_equals", "near", "none_of", "not_equal_to", "or_list", "raw", "starts_with",
    "starts_with_case_insensitive",
]
ResourceType = Literal[
    "achievement", "booking", "comment", "contact", "duplicates", "form_response", "group",
    "group_member", "journal", "membership", "message", "organisation", "page_document", "payment",
    "person", "reservation", "sheep_event", "vehicle",
]
SegmentTypeName = Literal["dynamic", "static", "hybrid", "auxiliary"]

# status, type and concise text for each domain error kind
KINDS: dict[str, tuple[int, str, str]] = {
    "validation": (400, "validation_error", "Validation error"),
    "too_large": (413, "validation_error", "Request too large"),
    "not_found": (404, "not_found", "Not found"),
    "conflict": (409, "conflict", "Conflict"),
    "forbidden": (403, "permission_denied", "Forbidden"),
    "unauthorized": (401, "authentication_error", "Unauthorized"),
    "unavailable": (503, "internal_error", "Service unavailable"),
}


class ErrorBody(BaseModel):
    error: str = Field(description="A concise error message")
    description: str = Field(description="A human readable description of the error")
    type: Literal[
        "authentication_error", "permission_denied", "not_found", "validation_error", "conflict", "internal_error"
    ]


def error_responses(*statuses: int) -> dict[int, Any]:
    text = {
        400: "Validation error (names the field and, for enumerations, the allowed values)",
        401: "Missing or unknown bearer token",
        403: "The token belongs to another bucket",
        404: "Not found (no such endpoint, e.g. a bucket that is not a valid handle)",
        409: "A segment with this name already exists",
        500: "Internal error",
        503: "The store is busy; retry after Retry-After seconds",
    }
    return {
        s: {"description": text[s], "content": {JSON: {"schema": {"$ref": "#/components/schemas/SheepErrorBody"}}}}
        for s in statuses
    }


def error(status: int, kind: str, concise: str, description: str, headers: dict[str, str] | None = None) -> Response:
    metrics.add_metric(name=f"Errors{status}", unit=MetricUnit.Count, value=1)
    body = {"error": concise, "description": description, "type": kind}
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers or {})


def _field_message(errs: list[Any]) -> str:
    first = errs[0] if errs else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    field = ".".join(loc) or "request"
    if first.get("type") == "json_invalid" or (first.get("type") == "model_attributes_type" and not loc):
        return "The request body must be a JSON object"
    if first.get("type") == "missing":
        return f"'{field}' is required"
    msg = str(first.get("msg", "invalid value"))
    return f"Invalid '{field}': {msg.removeprefix('Value error, ')}"


def resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error(400, "validation_error", "Validation error", _field_message(list(exc.errors())))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return error(400, "validation_error", "Validation error", "The request body must be a JSON object")

    @app.exception_handler(errors.Retryable)
    def _busy(exc: errors.Retryable) -> Response:
        return error(503, "internal_error", "Service unavailable", exc.message,
                     headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        if exc.kind not in KINDS:
            logger.exception("unmapped domain error")
            return error(500, "internal_error", "Internal server error", "An unexpected error occurred")
        status, kind, concise = KINDS[exc.kind]
        return error(status, kind, concise, exc.message)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        return error(404, "not_found", "Not found", "No such endpoint")

    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    @app.exception_handler(IdempotencyValidationError)
    def _reused(exc: Exception) -> Response:
        return error(400, "validation_error", "Idempotency-Key reused",
                     "Idempotency-Key was already used with a different request body")

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(exc: Exception) -> Response:
        return error(409, "conflict", "Request in progress",
                     "A request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    def _internal(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error(500, "internal_error", "Internal server error", "An unexpected error occurred")

    return app


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
    active: bool
    created: str = Field(description="YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC)")
    description: str | None
    display_value: str
    last_updated: str
    legacy_uid: str | None
    mailchimp_sync: bool
    name: str
    parent_segment: str | None
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


def render(segment: Segment | dict[str, Any]) -> dict[str, Any]:
    """A stored segment in SheepCRM's shape (whichever surface created it)."""
    s = segment if isinstance(segment, Segment) else Segment(**segment)
    editable = not s.system_segment
    return SheepSegment(
        active=s.active,
        created=sheep_time(s.created_at),
        description=s.description,
        display_value=s.name,
        last_updated=sheep_time(s.updated_at),
        legacy_uid=None,
        mailchimp_sync=s.mailchimp_sync,
        name=s.name,
        parent_segment=s.parent_segment,
        record_state=s.record_state,
        resource_type=s.resource_type,
        rules=s.rules,
        segment_type=s.segment_type,
        system_segment=s.system_segment,
        tags=s.tags,
        uid=uid_of(s.segment_id),
        uri=uri_of(s.bucket, s.segment_id),
        uris_exclude=s.uris_exclude,
        uris_include=s.uris_include,
        user_interface=UserInterface(
            can_create_segment=True,
            can_delete_segment=editable,
            can_edit_segment=editable,
            can_restore_segment=s.record_state == "deleted",
            policy_name="system" if s.system_segment else "bucket_key",
        ),
        view_context=s.view_context,
    ).model_dump()


# ------------------------------------------------------------------ create


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=200)
    operator: Operator
    value: Any = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if isinstance(value, str | int | float | bool | list | dict) or value is None:
            return value
        raise ValueError("value must be a string, number, boolean, list or object")

    @model_validator(mode="after")
    def _raw_tree(self) -> Rule:
        if self.operator == "raw":
            _check_tree(self.value, depth=0)
        return self


def _check_tree(node: Any, depth: int) -> None:
    """A `raw` value: {"all": [...]} | {"any": [...]} | {"not": node} over plain rules, never a query string."""
    if depth > 10:
        raise ValueError("raw rule trees may nest at most 10 levels")
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError('raw value must be {"all": [...]}, {"any": [...]} or {"not": rule}')
    (op, inner), = node.items()
    if op in ("all", "any"):
        if not isinstance(inner, list) or not inner:
            raise ValueError(f'"{op}" takes a non-empty list')
        for child in inner:
            _check_node(child, depth + 1)
    elif op == "not":
        _check_node(inner, depth + 1)
    else:
        raise ValueError(f'unknown raw operator "{op}" (use all, any or not)')


def _check_node(node: Any, depth: int) -> None:
    if isinstance(node, dict) and "field" in node:
        try:
            rule = Rule.model_validate(node)
        except ValidationError as exc:
            raise ValueError(f"invalid rule in raw tree: {exc.errors()[0]['msg']}") from None
        if rule.operator == "raw":
            raise ValueError("a raw tree holds plain rules, not another raw rule")
    else:
        _check_tree(node, depth)


class SheepCreateBody(BaseModel):
    """The seed's fields. Any of them may come as query parameters instead (the body wins)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    segment_type: SegmentTypeName = "dynamic"
    view_context: list[ViewContext] = Field(default_factory=list)
    parent_segment: str | None = None
    active: bool = True
    rules: list[Rule] = Field(default_factory=list)
    uris_include: list[str] = Field(default_factory=list)
    uris_exclude: list[str] = Field(default_factory=list)
    resource_type: ResourceType
    system_segment: bool = False
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=100)
    mailchimp_sync: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else clean_name(value)

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
                out[name] = json.loads(value)
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


def _check_parent(org_id: str, bucket: str, parent: str | None) -> None:
    if parent is None:
        return
    m = re.match(rf"^/{re.escape(bucket)}/segment/([0-9a-f]{{32}})/$", parent)
    if not m or storage.get_segment(org_id, str(uuid.UUID(m.group(1)))) is None:
        raise errors.ValidationFailed(f"Invalid 'parent_segment': {parent!r} is not a segment of bucket {bucket}")


create_router = Router()

_q = Annotated[str | None, Query()]


@create_router.post(
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
    who = caller()
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
        raise errors.ValidationFailed(_field_message(exc.errors(include_url=False))) from exc
    _check_uris(bucket, request)
    _check_parent(who.org_id, bucket, request.parent_segment)
    new = NewSegment(source="sheepcrm", **request.model_dump(exclude={"rules"}),
                     rules=[r.model_dump() for r in request.rules])

    def run() -> dict[str, Any]:
        try:
            return render(logic.create_segment(who, new))
        except errors.NameTaken as exc:
            raise errors.Conflict(f"A segment named {exc.name!r} already exists in bucket {bucket}") from exc

    rendered = run_idempotent("sheep_create_segment", {"bucket": bucket, **new.model_dump()}, run)
    return Response(status_code=201, content_type=JSON, body=SheepSegment.model_validate(rendered))
