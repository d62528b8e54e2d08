"""SheepCRM reads of a segment's records (SheepRecordsFunction): its config, a lookup by one search
term, its members' signals, and the progress of a bulk action (the `notification_uri` of
`action/delete`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from segments import errors
from segments.store import limits
from segments.surfaces.app import Routes
from segments.surfaces.http import ok_schema
from segments.surfaces.sheep import SECURITY, SEGMENT_NOT_FOUND, error, error_responses, ok, uid_of, uri_of
from segments.surfaces.sheep_segments import SegmentUid, bucket_actor, segment_id_of_uid
from segments.timefmt import sheep_time
from segments.usecases import bulk_delete, lookup, segment_config, signal_reads

records_routes = Routes()

BASE = "/segments/v2/<bucket>"
TAGS = ["SheepCRM segments"]


# ------------------------------------------------------------------ config


class ConfigField(BaseModel):
    field: str
    form_type: str
    label: str
    style: str


class ConfigMapping(BaseModel):
    collection: str = Field(description="The segment's resource type")
    contact_field: str = Field(
        description='The field naming the record\'s contact (`uri`: the record is one; "" for none)'
    )
    contact_search_fields: list[str]
    field_list: list[str] = Field(description="The default fieldset's fields, in order")
    fields: list[ConfigField]
    join_orgs: bool
    join_people: bool
    name: str
    name_singular: str
    prefix: str = Field(description="The uri prefix of the records, /{bucket}/{resource_type}/")
    search_fields: list[str] = Field(description="What `lookup` matches (besides a PID or uri prefix)")
    search_placeholder: str
    sort_by: list[str]
    unique_field: str
    use_mapreduce: bool


class ConfigUserInterface(BaseModel):
    can_bypass_gdpr: list[bool]
    can_create_segment: bool
    can_delete_segment: bool
    can_edit_segment: bool
    can_restore_segment: bool


class SegmentConfig(BaseModel):
    mapping: ConfigMapping
    resource_type: str
    segment: str = Field(description="The segment's uri")
    segment_type: str
    user_groups: list[Any]
    user_groups_for_display: list[Any]
    user_interface: ConfigUserInterface
    view_context: list[str]


@records_routes.get(
    BASE + "/segment/<uid>/config",
    summary="Segment - Config",
    description="How a client shows, searches and sorts the segment's records: the default fieldset of its "
    "resource type (`mapping.fields` with labels and form types), the fields `lookup` searches, the sort order.",
    responses={**ok_schema(SegmentConfig), **error_responses(401, 403, 404, 500, 503, notes={404: SEGMENT_NOT_FOUND})},
    security=SECURITY,
    tags=TAGS,
)
def config(bucket: str, uid: SegmentUid) -> Response[Any]:
    who = bucket_actor(bucket)
    found = segment_config.config(who, segment_id_of_uid(uid))
    editable = not found["system_segment"]
    return ok(
        {
            "mapping": found["mapping"],
            "resource_type": found["resource_type"],
            "segment": uri_of(bucket, found["segment_id"]),
            "segment_type": found["segment_type"],
            "user_groups": [],
            "user_groups_for_display": [],
            "user_interface": {
                "can_bypass_gdpr": [],
                "can_create_segment": True,
                "can_delete_segment": editable,
                "can_edit_segment": editable,
                "can_restore_segment": False,
            },
            "view_context": found["view_context"],
        }
    )


# ------------------------------------------------------------------ lookup


class LookupItem(BaseModel):
    display_value: str
    id: str = Field(description="The record's uri")
    label: str
    text: str
    uri: str
    value: str = Field(description="The record's uri")
    minerva_pid: str


LOOKUP_HEADERS = {
    "X-Lookup-Truncated": {
        "description": "`true` when more records of the segment may match: the scan stopped at its cap "
        f"({lookup.SCAN_CAP:,} members) or `limit` results were found first",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "X-Lookup-Scanned": {"description": "Member items examined", "schema": {"type": "string"}},
}


@records_routes.get(
    BASE + "/segment/<uid>/lookup",
    summary="Segment - Lookup",
    description="The segment's records matching one search term: a PID or person-uri prefix (`p-ab12`, "
    "`/{bucket}/person/p-ab12`; exact case), or a part of a name or email field (case-insensitive; the config's "
    f"`search_fields`). A name or email search examines at most {lookup.SCAN_CAP:,} members: header "
    "`X-Lookup-Truncated: true` says more may match.",
    responses={
        **ok_schema(list[LookupItem], headers=LOOKUP_HEADERS),
        **error_responses(
            400, 401, 403, 404, 500, 503, notes={400: "A missing or bad `q` or `limit`", 404: SEGMENT_NOT_FOUND}
        ),
    },
    security=SECURITY,
    tags=TAGS,
)
def lookup_records(
    bucket: str,
    uid: SegmentUid,
    q: Annotated[str, Query(min_length=1, max_length=lookup.Q_MAX, description="One search term")],
    limit: Annotated[
        int, Query(ge=1, le=lookup.LIMIT_MAX, description=f"[ours] Results at most (default {lookup.LIMIT_DEFAULT})")
    ] = lookup.LIMIT_DEFAULT,
) -> Response[Any]:
    who = bucket_actor(bucket)
    found = lookup.lookup(who, segment_id_of_uid(uid), q, limit=limit)
    headers = {"X-Lookup-Truncated": str(found.truncated).lower(), "X-Lookup-Scanned": str(found.scanned)}
    return ok(found.results, headers)


# ------------------------------------------------------------------ signals


class SegmentSignals(BaseModel):
    segment: str = Field(description="The segment's uri")
    type: str
    results: list[dict[str, Any]] = Field(
        description="The signals of current members, newest first, in Minerva's shapes (docs/api.md#signals) "
        "plus `uri` (the person's), `first_observed_at` as YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC)"
    )
    next_cursor: str | None = Field(description="Pass as `cursor` (with the same since/until); null on the last page")


@records_routes.get(
    BASE + "/segment/<uid>/signals",
    summary="Segment - SegmentSignals of its members",
    description="Deaths, job changes or relocations of the segment's current members, newest first by "
    "`first_observed_at`, as `GET /v2/segments/signals/...` serves them (the same cursors): `since`/`until` "
    "(ISO-8601 with a zone, inclusive), `limit` (1-1,000), `cursor`.",
    responses={
        **ok_schema(SegmentSignals),
        **error_responses(
            400,
            401,
            403,
            404,
            500,
            503,
            notes={
                400: "A missing or unknown `type`, a bad `since`/`until`/`limit`, or a cursor not made for this "
                "segment, type and window",
                404: SEGMENT_NOT_FOUND,
            },
        ),
    },
    security=SECURITY,
    tags=TAGS,
)
def signals(
    bucket: str,
    uid: SegmentUid,
    type: Annotated[Literal["death", "job_change", "relocation"], Query(description="The signal type")],
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    segment_id = segment_id_of_uid(uid)
    found = signal_reads.list_signals(who, segment_id, type, since=since, until=until, limit=limit, cursor=cursor)
    results = [
        {
            **entry,
            "uri": f"/{bucket}/person/{entry['minerva_pid']}/",
            "first_observed_at": sheep_time(entry["first_observed_at"]),
        }
        for entry in found["results"]
    ]
    return ok(
        {"segment": uri_of(bucket, segment_id), "type": type, "results": results, "next_cursor": found["next_cursor"]}
    )


# ------------------------------------------------------------------ notifications (bulk action progress)


class BulkProgress(BaseModel):
    chunks: int = Field(description="Chunks done")
    members_read: int = Field(description="Members of the request's resultset read so far")
    deleted: int = Field(description="Person records deleted")
    not_found: int = Field(description="Members without a person record (nothing to delete)")
    filtered_out: int = Field(description="Records the extra rules kept")
    joined_after: int = Field(description="Members added after the request, left alone")


class BulkNotification(BaseModel):
    uri: str = Field(description="/{bucket}/notification/{uid}/: the notification_uri the action answered")
    uid: str
    action: str
    segment: str
    status: Literal["queued", "running", "done", "stopped"]
    message: str | None = Field(description="Why the job stopped")
    created: str
    last_updated: str
    lambda_params: dict[str, Any]
    progress: BulkProgress
    recent: list[dict[str, Any]] | None = Field(default=None, description="verbose: the last chunks' summaries")


def notification_uri(bucket: str, job_id: str) -> str:
    return f"/{bucket}/notification/{uid_of(job_id)}/"


def lambda_params(bucket: str, job: dict[str, Any]) -> dict[str, Any]:
    rules = limits.plain(list(job.get("rules") or []))  # numbers as JSON numbers (rule values are Decimal)
    return {
        "uri": uri_of(bucket, str(job["segment_id"])),
        "rules": {"all": rules} if rules else {},
        "safe_mode": bool(job["safe_mode"]),
        "batch_size": int(job["batch_size"]),
        "verbose": bool(job.get("verbose")),
    }


def render_job(bucket: str, job: dict[str, Any]) -> dict[str, Any]:
    counts = job.get("counts") or {}
    body = {
        "uri": notification_uri(bucket, str(job["job_id"])),
        "uid": uid_of(str(job["job_id"])),
        "action": job["action"],
        "segment": uri_of(bucket, str(job["segment_id"])),
        "status": job["status"],
        "message": job.get("message"),
        "created": sheep_time(str(job["requested_at"])),
        "last_updated": sheep_time(str(job["updated_at"])),
        "lambda_params": lambda_params(bucket, job),
        "progress": {"chunks": int(job.get("chunk", 0)), **{k: int(counts.get(k, 0)) for k in bulk_delete.COUNTS}},
    }
    if job.get("verbose"):
        body["recent"] = list(job.get("recent") or [])
    return body


@records_routes.get(
    BASE + "/notification/<uid>",
    summary="BulkNotification - BulkProgress of a bulk action",
    description="What `notification_uri` names: the status of a bulk action (`queued`, `running`, `done`, or "
    "`stopped` with the reason in `message`) and its counts so far.",
    responses={
        **ok_schema(BulkNotification),
        **error_responses(401, 403, 404, 500, 503, notes={404: "No such notification in this bucket"}),
    },
    security=SECURITY,
    tags=["SheepCRM bulk actions"],
)
def notification(bucket: str, uid: Annotated[str, Path(description="The notification's uid")]) -> Response[Any]:
    who = bucket_actor(bucket)
    try:
        job = bulk_delete.get_job(who, uid)
    except errors.NotFound:
        return error(404, "not_found", "Notification not found", "No such notification in this bucket")
    return ok(render_job(bucket, job))
