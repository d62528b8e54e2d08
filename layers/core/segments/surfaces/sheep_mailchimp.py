"""SheepCRM `GET .../segment/{uid}/all/sync_mailchimp` (SheepActionsFunction): queue a full sync of
the segment to the org's Mailchimp audience and answer the vendor's `requestSync` receipt, whose
`journal_uri` is read at `GET /segments/v2/{bucket}/notification/{uid}`."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from segments import errors
from segments.mailchimp.client import BATCH_MAX
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, dumps, run_idempotent
from segments.surfaces.sheep import SECURITY, error_responses, uri_of
from segments.surfaces.sheep_records import notification_uri
from segments.surfaces.sheep_segments import bucket_actor, segment_id_of_uid
from segments.usecases import mailchimp_full_sync

mailchimp_routes = Routes()

NOT_FOUND = "No such segment in this bucket (unknown, deleted, another bucket's, or a malformed uid)"
_BOOLS = {"true": True, "false": False}


class SyncReceipt(BaseModel):
    """The vendor's `requestSync`."""

    bucket: str
    lambda_prefix: str = Field(description="[ours] the job's kind: sync_mailchimp")
    segment_uri: str
    segment_name: str = Field(description="The name of the static segment (tag) in the Mailchimp audience")
    mailchimp_batch_size: int
    verbose: bool
    journal_uri: str = Field(
        description="/{bucket}/notification/{uid}/; read it at GET /segments/v2/{bucket}/notification/{uid}"
    )
    safe_mode: bool = Field(description="Always false: a sync changes nothing in this service")


@mailchimp_routes.get(
    "/segments/v2/<bucket>/segment/<uid>/all/sync_mailchimp",
    summary="Segment - Sync Mailchimp",
    description="Queues a full sync of the segment to the org's Mailchimp audience (credentials set with "
    "`segments-admin set-mailchimp`): every current member with an email in their person record is added to "
    "the audience (new contacts only; existing ones keep their status) and to a static segment (tag) of the "
    "segment's name (or `segment_name`), and every email of that static segment no current member has is "
    "removed from it. Answers the receipt at once; its `journal_uri` says when the sync is done. Segments with "
    "`mailchimp_sync: true` are also kept in sync incrementally after every membership change.",
    responses={
        200: {"description": "The sync is queued", "content": {JSON: {"model": SyncReceipt}}},
        **error_responses(
            400,
            401,
            403,
            404,
            500,
            503,
            notes={400: f"mailchimp_batch_size outside 1-{BATCH_MAX}, verbose not true/false", 404: NOT_FOUND},
        ),
    },
    security=SECURITY,
    tags=["SheepCRM Mailchimp"],
)
def sync_mailchimp(
    bucket: str,
    uid: Annotated[str, Path(description="The segment's uid (32 hex)")],
    segment_name: Annotated[
        str | None, Query(max_length=100, description="The Mailchimp static segment's name (default: the segment's)")
    ] = None,
    mailchimp_batch_size: Annotated[str | None, Query(description=f"Members a Mailchimp call, 1-{BATCH_MAX}")] = None,
    verbose: Annotated[str | None, Query(description="Keep each batch's counts in the notification")] = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    try:
        size = int(mailchimp_batch_size) if mailchimp_batch_size is not None else BATCH_MAX
    except ValueError as exc:
        raise errors.ValidationFailed("mailchimp_batch_size must be an integer") from exc
    if verbose is not None and verbose not in _BOOLS:
        raise errors.ValidationFailed("verbose must be true or false")
    loud = _BOOLS.get(verbose or "false", False)

    def run() -> dict[str, Any]:
        job = mailchimp_full_sync.request_full_sync(
            who, segment_id, batch_size=size, segment_name=segment_name, verbose=loud
        )
        return {
            "bucket": bucket,
            "lambda_prefix": mailchimp_full_sync.ACTION,
            "segment_uri": uri_of(bucket, job["segment_id"]),
            "segment_name": job["target_name"],
            "mailchimp_batch_size": size,
            "verbose": loud,
            "journal_uri": notification_uri(bucket, job["job_id"]),
            "safe_mode": False,
        }

    payload = {"bucket": bucket, "segment_id": segment_id, "segment_name": segment_name, "size": size, "verbose": loud}
    answer = run_idempotent("sheep_sync_mailchimp", payload, run)
    return Response(status_code=200, content_type=JSON, body=dumps(answer))
