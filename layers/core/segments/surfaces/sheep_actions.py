"""SheepCRM bulk actions on a segment's records (SheepActionsFunction): `action/delete` queues an
asynchronous delete of the members' person records and answers where to follow it; `action/replace`
is not implemented (the vendor's document does not say what replaces the records)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from segments import errors
from segments.store import limits
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, dumps, parse_json, run_idempotent
from segments.surfaces.sheep import SECURITY, SEGMENT_NOT_FOUND, error, error_responses, field_message
from segments.surfaces.sheep_records import lambda_params, notification_uri, render_job
from segments.surfaces.sheep_segments import SegmentUid, bucket_actor, segment_id_of_uid
from segments.usecases import bulk_delete
from segments.usecases import segments as usecase

action_routes = Routes()

BASE = "/segments/v2/<bucket>/segment/<uid>/action"
TAGS = ["SheepCRM bulk actions"]
_q = Annotated[str | None, Query()]


class BulkActionBody(BaseModel):
    """The action's parameters; each may come as a query parameter instead (the body wins).
    Booleans are JSON true/false only (in a query string: true or false)."""

    model_config = ConfigDict(extra="ignore")

    rules: Any = Field(
        default=None,
        description="Extra rules: only members whose person record matches are deleted. A list of rules (all "
        "must match), one rule, or a boolean tree {all|any|not: ...}; in the query string as JSON",
    )
    safe_mode: StrictBool = Field(
        default=True, description="Refuse (409) while the segment's membership is being built (default true)"
    )
    batch_size: int = Field(default=bulk_delete.BATCH_DEFAULT, description="Members per chunk, 1-2,500")
    verbose: StrictBool = Field(default=False, description="Keep a summary of the last chunks in the notification")


class BulkLambdaParams(BaseModel):
    uri: str = Field(description="The segment's uri")
    rules: dict[str, Any] = Field(description='The extra rules as a tree, {"all": [rule, ...]}; {} for none')
    safe_mode: bool
    batch_size: int
    verbose: bool


class NotImplementedBody(BaseModel):
    error: str
    description: str
    type: Literal["not_implemented"]


class BulkDeleteStarted(BaseModel):
    notification_uri: str = Field(
        description="/{bucket}/notification/{uid}/; read it at GET /segments/v2/{bucket}/notification/{uid}"
    )
    lambda_params: BulkLambdaParams
    status: str = Field(description="[ours] queued")
    notification: str = Field(description="[ours] The path that reads the notification on this API")


_BOOLS = {"true": True, "false": False}


def _parameters(body: BulkActionBody | None, query: dict[str, str | None]) -> BulkActionBody:
    given: dict[str, Any] = {k: v for k, v in query.items() if v is not None}
    for name in ("safe_mode", "verbose"):
        if name in given:
            given[name] = _BOOLS.get(str(given[name]), given[name])  # anything else fails as a non-boolean
    if "rules" in given:
        try:
            given["rules"] = parse_json(str(given["rules"]), "Invalid 'rules':")
        except json.JSONDecodeError as exc:
            raise errors.ValidationFailed("Invalid 'rules': must be JSON (a rule, a list of rules or a tree)") from exc
    if body is not None:
        given |= body.model_dump(exclude_unset=True)
    try:
        return BulkActionBody.model_validate(given)
    except ValidationError as exc:
        raise errors.ValidationFailed(field_message(exc.errors(include_url=False))) from exc


@action_routes.post(
    BASE + "/delete",
    summary="Segment - Delete All Records",
    description="Deletes the person records of the segment's members from the bucket's registry, asynchronously "
    "(chunks of `batch_size` members, at most 2,500), optionally only those matching extra `rules`. Answers at "
    "once with `notification_uri`, whose progress `GET /segments/v2/{bucket}/notification/{uid}` reads. Deleted "
    "records leave every rule segment of the bucket (ledger reason `rule`). With `safe_mode` (the default) a "
    "segment whose membership is still being built is refused (409).",
    responses={
        200: {"description": "The action is queued", "content": {JSON: {"model": BulkDeleteStarted}}},
        **error_responses(
            400,
            401,
            403,
            404,
            409,
            500,
            503,
            notes={
                400: "A bad parameter: batch_size beyond 2,500 ('Batch size must be at most 2500'), bad rules",
                404: SEGMENT_NOT_FOUND,
                409: "safe_mode: the segment's membership is still being built",
            },
        ),
    },
    security=SECURITY,
    tags=TAGS,
)
def delete_records(
    bucket: str,
    uid: SegmentUid,
    body: Annotated[BulkActionBody | None, Body()] = None,
    rules: _q = None,
    safe_mode: _q = None,
    batch_size: _q = None,
    verbose: _q = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    params = _parameters(body, dict(rules=rules, safe_mode=safe_mode, batch_size=batch_size, verbose=verbose))
    bulk_delete.check_batch_size(params.batch_size)
    extra = bulk_delete.extra_rules(params.rules)

    def run() -> dict[str, Any]:
        job = bulk_delete.start(
            who,
            segment_id,
            rules=extra,
            safe_mode=params.safe_mode,
            batch_size=params.batch_size,
            verbose=params.verbose,
        )
        return {
            "notification_uri": notification_uri(bucket, job["job_id"]),
            "lambda_params": lambda_params(bucket, job),
            "status": job["status"],
            "notification": f"/segments/v2/{bucket}/notification/{render_job(bucket, job)['uid']}",
        }

    payload = {
        "bucket": bucket,
        "segment_id": segment_id,
        **params.model_dump(exclude={"rules"}),
        "rules": limits.plain(extra),
    }
    answer = run_idempotent("sheep_bulk_delete", payload, run)
    return Response(status_code=200, content_type=JSON, body=dumps(answer))


REPLACE = (
    "action/replace is not implemented: the vendor's document says it 'creates a new resultset from the segment "
    "and replaces all records within it', but takes no replacement data (only rules, safe_mode, batch_size, "
    "verbose), so what the records would be replaced with is undefined"
)


@action_routes.post(
    BASE + "/replace",
    summary="Segment - Replace Records (not implemented)",
    description="Answers 501: " + REPLACE + ". See docs/decisions.md.",
    responses={
        501: {"description": "Not implemented", "content": {JSON: {"model": NotImplementedBody}}},
        **error_responses(
            400,
            401,
            403,
            404,
            500,
            notes={400: "Validation error (replace reads no parameter: it answers 501)", 404: SEGMENT_NOT_FOUND},
        ),
    },
    security=SECURITY,
    tags=TAGS,
)
def replace_records(bucket: str, uid: SegmentUid) -> Response[Any]:
    who = bucket_actor(bucket)
    usecase.get_segment(who, segment_id_of_uid(uid))  # an unknown or foreign segment is a 404 first
    return error(501, "not_implemented", "Not implemented", REPLACE)
