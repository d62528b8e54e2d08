"""SheepCRM exports and fieldsets (SheepExportsFunction; docs/api.md#exports): `/all/excel`, `/all/xlsx`
and `/all/pdf` start an export job and answer the vendor's `requestReport` receipt, whose
`journal_uri` (`/{bucket}/journal/{uid}/`) is read at `GET /segments/v2/{bucket}/journal/{uid}`;
`/fieldset` lists, creates and deletes fieldsets (`fieldsetList`, `fieldsetSingle`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from segments import errors
from segments.store.fieldsets import Fieldset
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, dumps
from segments.surfaces.sheep import SECURITY, error, error_responses, uid_of, uri_of
from segments.surfaces.sheep_segments import bucket_actor, segment_id_of_uid
from segments.timefmt import sheep_time
from segments.usecases import exports, fieldsets

sheep_export_routes = Routes()
BASE = "/segments/v2/<bucket>"
TAGS = ["SheepCRM exports"]
NOT_FOUND = (
    "No such segment in this bucket (unknown, deleted, another bucket's, or a malformed uid), or no such fieldset"
)
REPORTS: dict[str, Literal["csv", "xlsx", "pdf"]] = {"excel": "csv", "xlsx": "xlsx", "pdf": "pdf"}
_Uid = Annotated[str, Path(description="The segment's uid (32 hex)")]
_Fields = Annotated[
    list[str] | None,
    Query(description="[ours] Person-record fields by dotted path: repeat the key or join with commas"),
]


class RequestReport(BaseModel):
    bucket: str
    uid: str = Field(description="The segment's uid")
    lambda_prefix: str
    policy: str
    gdpr_bypass: bool
    gdpr_channel: str
    user_uri: str = Field(description="The key that asked: /{bucket}/api_key/{key_id}/")
    template: str = Field(description='The fieldset uid the columns come from; "" for none')
    journal_uri: str = Field(description="/{bucket}/journal/{uid}/: read it at GET /segments/v2/{bucket}/journal/{uid}")
    use_mapreduce: bool
    report_format: str = Field(description="excel (CSV for Excel, UTF-8 with a BOM), xlsx or pdf")
    debug: bool
    status: str = Field(description="[ours] queued")
    journal: str = Field(description="[ours] The path that reads the journal on this API")


class Journal(BaseModel):
    uri: str
    uid: str
    segment: str = Field(description="The segment's uri")
    report_format: str
    columns: list[str]
    status: Literal["queued", "running", "succeeded", "failed"]
    rows: int
    size_bytes: int | None
    url: str | None = Field(description="Once succeeded: a presigned HTTPS URL of the file (made at each read)")
    url_expires_at: str | None
    message: str | None = Field(description="Why the job failed")
    created: str
    last_updated: str


def journal_uri(bucket: str, export_id: str) -> str:
    return f"/{bucket}/journal/{uid_of(export_id)}/"


def _json(body: Any, status: int = 200) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=dumps(body))


def _report(report: str) -> Any:
    fmt = REPORTS[report]

    def start(
        bucket: str,
        uid: _Uid,
        template: Annotated[str | None, Query(max_length=64, description="A fieldset uid: its fields")] = None,
        fields: _Fields = None,
        policy: Annotated[str | None, Query(max_length=255)] = None,
        gdpr_bypass: Annotated[bool, Query()] = False,
        gdpr_bypass_reason: Annotated[str | None, Query(max_length=1024)] = None,
        debug: Annotated[bool, Query()] = False,
    ) -> Response[Any]:
        who = bucket_actor(bucket)
        segment_id = segment_id_of_uid(uid)
        asked = [f.strip() for value in fields or [] for f in value.split(",") if f.strip()]
        fieldset = template or None
        if fieldset == fieldsets.GENERATED:
            asked, fieldset = [*fieldsets.get(who, fieldsets.GENERATED).fields, *asked], None
        job = exports.start(
            who, segment_id, fmt=fmt, fields=asked, fieldset_id=fieldset, surface="sheep", template=template
        )
        receipt = {
            "bucket": bucket,
            "uid": uid_of(segment_id),
            "lambda_prefix": "segments-export",
            "policy": policy or "",
            "gdpr_bypass": gdpr_bypass,
            "gdpr_channel": "",
            "user_uri": f"/{bucket}/api_key/{who.key_id or ''}/",
            "template": template or "",
            "journal_uri": journal_uri(bucket, job["export_id"]),
            "use_mapreduce": False,
            "report_format": report,
            "debug": debug,
            "status": job["status"],
            "journal": f"/segments/v2/{bucket}/journal/{uid_of(job['export_id'])}",
        }
        return _json(receipt)

    start.__name__ = f"export_{report}"
    return start


for _report_name, _title in (("excel", "Excel (CSV) export"), ("xlsx", "XLSX export"), ("pdf", "PDF export")):
    sheep_export_routes.get(
        BASE + f"/segment/<uid>/all/{_report_name}",
        summary=f"Segment - {_title}",
        description=f"Starts an asynchronous {_title} of the segment's members (uri, display_value, first and last "
        "added, then the fields of the `template` fieldset and of `fields`) and answers the receipt; "
        "`journal_uri` follows the job and gives the file's URL once done."
        + (
            " A PDF holds at most EXPORT_PDF_MAX_ROWS rows (2,000 by default): a larger segment is refused (400)."
            if _report_name == "pdf"
            else ""
        ),
        responses={
            200: {"description": "The report is queued", "content": {JSON: {"model": RequestReport}}},
            **error_responses(400, 401, 403, 404, 429, 500, 503, notes={404: NOT_FOUND}),
        },
        security=SECURITY,
        tags=TAGS,
    )(_report(_report_name))


def render_journal(bucket: str, job: dict[str, Any]) -> dict[str, Any]:
    fmt = {"csv": "excel", "xlsx": "xlsx", "pdf": "pdf"}.get(str(job["format"]), str(job["format"]))
    return {
        "uri": journal_uri(bucket, str(job["export_id"])),
        "uid": uid_of(str(job["export_id"])),
        "segment": uri_of(bucket, str(job["segment_id"])),
        "report_format": fmt,
        "columns": list(job.get("columns") or []),
        "status": job["status"],
        "rows": int(job.get("rows") or 0),
        "size_bytes": job.get("size_bytes"),
        **exports.link_fields(job),
        "message": job.get("error"),
        "created": sheep_time(str(job["requested_at"])),
        "last_updated": sheep_time(str(job["updated_at"])),
    }


@sheep_export_routes.get(
    BASE + "/journal/<uid>",
    summary="Journal - an export's progress",
    description="What `journal_uri` names: the export's status (`queued`, `running` with the rows done, "
    "`succeeded` with the file's presigned `url`, `failed` with the reason in `message`).",
    responses={
        200: {"description": "OK", "content": {JSON: {"model": Journal}}},
        **error_responses(401, 403, 404, 500, 503, notes={404: "No such journal in this bucket"}),
    },
    security=SECURITY,
    tags=TAGS,
)
def journal(bucket: str, uid: Annotated[str, Path(description="The journal's uid")]) -> Response[Any]:
    who = bucket_actor(bucket)
    try:
        job = exports.get_job(who, uid)
    except errors.NotFound:
        return error(404, "not_found", "Journal not found", "No such journal in this bucket")
    return _json(render_journal(bucket, job))


# ------------------------------------------------------------------ fieldsets


class FieldDisplay(BaseModel):
    field: str
    type: str


class FieldsetSingle(BaseModel):
    active: bool
    applicable_resources: list[str]
    created: str
    description: str
    field_display: list[FieldDisplay]
    fields: list[str]
    last_updated: str
    locked: bool = Field(description="true for the generated fieldset (uid `person`): it cannot be changed")
    name: str
    record_state: str
    uid: str
    uri: str


class FieldsetSummary(BaseModel):
    applicable_resources: list[str]
    created: str
    description: str
    fields: list[str]
    last_updated: str
    name: str
    record_state: str
    uid: str
    uri: str


class FieldsetList(BaseModel):
    errors: list[str] = Field(description="Notes: the generated fieldset's scan stopped at its cap")
    fieldsets: list[FieldsetSummary]


class FieldsetBody(BaseModel):
    """The fieldset's parameters; each may come as a query parameter instead (the body wins)."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr | None = None
    description: StrictStr | None = None
    fields: list[StrictStr] | None = None
    resource: StrictStr | None = None
    applicable_resources: list[StrictStr] | None = None


def _summary(bucket: str, found: Fieldset) -> dict[str, Any]:
    return {
        "applicable_resources": found.applicable_resources,
        "created": sheep_time(found.created_at),
        "description": found.description,
        "fields": found.fields,
        "last_updated": sheep_time(found.updated_at),
        "name": found.name,
        "record_state": found.record_state,
        "uid": found.fieldset_id,
        "uri": f"/{bucket}/fieldset/{found.fieldset_id}/",
    }


def _single(bucket: str, found: Fieldset) -> dict[str, Any]:
    return {
        **_summary(bucket, found),
        "active": found.record_state == "active",
        "field_display": [{"field": f, "type": "text"} for f in found.fields],
        "locked": found.fieldset_id == fieldsets.GENERATED,
    }


_FIELDSET_NOT_FOUND = {404: "No such fieldset in this bucket"}
_Listed = Annotated[list[str] | None, Query(description="An array: repeat the key, or join the items with commas")]


def _items(values: list[str] | None) -> list[str] | None:
    return None if values is None else [v.strip() for value in values for v in value.split(",") if v.strip()]


@sheep_export_routes.get(
    BASE + "/fieldset",
    summary="Fieldset - list of fields",
    description="The bucket's fieldsets; with `resource=person`, those for person records, led by the generated "
    "fieldset (uid `person`) of every field seen on the bucket's person records.",
    responses={
        200: {"description": "OK", "content": {JSON: {"model": FieldsetList}}},
        **error_responses(400, 401, 403, 500, 503),
    },
    security=SECURITY,
    tags=TAGS,
)
def list_fieldsets(bucket: str, resource: Annotated[str | None, Query(max_length=64)] = None) -> Response[Any]:
    who = bucket_actor(bucket)
    found, notes = fieldsets.list_fieldsets(who, resource=resource)
    return _json({"errors": notes, "fieldsets": [_summary(bucket, f) for f in found]})


@sheep_export_routes.post(
    BASE + "/fieldset",
    summary="Fieldset - create a fieldset",
    description="A named list of fields for exports: `fields`, or with `resource=person` and no fields, every field "
    "seen on the bucket's person records. Parameters in the query string (as the vendor documents) or a JSON body.",
    responses={
        201: {"description": "Created", "content": {JSON: {"model": FieldsetSingle}}},
        **error_responses(400, 401, 403, 500, 503),
    },
    security=SECURITY,
    tags=TAGS,
)
def create_fieldset(
    bucket: str,
    body: Annotated[FieldsetBody | None, Body()] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
    description: Annotated[str | None, Query(max_length=4096)] = None,
    fields: _Listed = None,
    resource: Annotated[str | None, Query(max_length=64)] = None,
    applicable_resources: _Listed = None,
) -> Response[Any]:
    who = bucket_actor(bucket)
    given = FieldsetBody(
        name=name,
        description=description,
        fields=_items(fields),
        resource=resource,
        applicable_resources=_items(applicable_resources),
    ).model_dump(exclude_none=True)
    if body is not None:
        given |= body.model_dump(exclude_none=True)
    made = fieldsets.create(
        who,
        name=given.get("name"),
        description=given.get("description"),
        fields=given.get("fields"),
        resource=given.get("resource"),
        applicable_resources=given.get("applicable_resources"),
    )
    return _json(_single(bucket, made), 201)


@sheep_export_routes.get(
    BASE + "/fieldset/<uid>",
    summary="Fieldset - single fieldset",
    description="One fieldset (uid `person`: the generated one).",
    responses={
        200: {"description": "OK", "content": {JSON: {"model": FieldsetSingle}}},
        **error_responses(401, 403, 404, 500, 503, notes=_FIELDSET_NOT_FOUND),
    },
    security=SECURITY,
    tags=TAGS,
)
def get_fieldset(bucket: str, uid: Annotated[str, Path(max_length=64)]) -> Response[Any]:
    return _json(_single(bucket, fieldsets.get(bucket_actor(bucket), uid)))


def _delete(bucket: str, uid: str | None) -> Response[Any]:
    who = bucket_actor(bucket)
    if not uid:
        raise errors.ValidationFailed("'uid' is required: the fieldset to delete")
    return _json(_single(bucket, fieldsets.delete(who, uid)))


@sheep_export_routes.delete(
    BASE + "/fieldset",
    summary="Fieldset - delete",
    description="Deletes the fieldset named by `uid` (the vendor lists uid as a parameter of this path; here it is "
    "a query parameter, or use DELETE /fieldset/{uid}). Answers the deleted fieldset.",
    responses={
        200: {"description": "Deleted", "content": {JSON: {"model": FieldsetSingle}}},
        **error_responses(400, 401, 403, 404, 500, 503, notes=_FIELDSET_NOT_FOUND),
    },
    security=SECURITY,
    tags=TAGS,
)
def delete_fieldset(bucket: str, uid: Annotated[str | None, Query(max_length=64)] = None) -> Response[Any]:
    return _delete(bucket, uid)


@sheep_export_routes.delete(
    BASE + "/fieldset/<uid>",
    summary="Fieldset - delete (by path)",
    description="Deletes the fieldset; answers it, `record_state` deleted.",
    responses={
        200: {"description": "Deleted", "content": {JSON: {"model": FieldsetSingle}}},
        **error_responses(400, 401, 403, 404, 500, 503, notes=_FIELDSET_NOT_FOUND),
    },
    security=SECURITY,
    tags=TAGS,
)
def delete_fieldset_by_path(bucket: str, uid: Annotated[str, Path(max_length=64)]) -> Response[Any]:
    return _delete(bucket, uid)
