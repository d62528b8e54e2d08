"""Minerva routes for exports (ExportsApiFunction; docs/api.md#exports): start a job (202), read one
(status, rows, size, a presigned URL once done), list an org's recent jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from segments.surfaces import minerva
from segments.surfaces.app import Routes
from segments.surfaces.http import JSON, actor, dumps, request_id, run_idempotent
from segments.usecases import exports

export_routes = Routes()
TAGS = ["Exports"]
NOT_FOUND = "Export not found: unknown, or another organisation's"


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    segment_id: Annotated[StrictStr, Field(max_length=64)]
    format: Literal["csv", "jsonl", "xlsx"] = Field(description="The file's format")
    fields: list[StrictStr] | None = Field(
        default=None,
        description="Person-record fields by dotted path (`address.city`), after minerva_pid, first_added_at and "
        "last_added_at; a field no record holds is an empty column. At most 200",
    )
    fieldset_id: StrictStr | None = Field(
        default=None, max_length=64, description="A fieldset's uid (SheepCRM `/fieldset`): its fields, before `fields`"
    )


class ExportView(BaseModel):
    export_id: str
    segment_id: str
    format: str
    columns: list[str] = Field(description="The file's columns, in order")
    status: Literal["queued", "running", "succeeded", "failed"]
    rows: int = Field(description="Rows written so far (all of them once succeeded)")
    size_bytes: int | None = Field(description="The file's size once succeeded")
    url: str | None = Field(description="Once succeeded: a presigned HTTPS URL of the file (made at each read)")
    url_expires_at: str | None
    error: str | None = Field(description="Why the job failed")
    created_at: str
    updated_at: str
    finished_at: str | None


class ExportResponse(ExportView):
    api_request_id: str


class ExportList(BaseModel):
    items: list[ExportView]


class ExportListResponse(BaseModel):
    api_request_id: str
    results: ExportList


def render(job: dict[str, Any], *, with_url: bool = True) -> dict[str, Any]:
    link = exports.link_fields(job) if with_url else {"url": None, "url_expires_at": None}
    return {
        "export_id": job["export_id"],
        "segment_id": job["segment_id"],
        "format": job["format"],
        "columns": list(job.get("columns") or []),
        "status": job["status"],
        "rows": int(job.get("rows") or 0),
        "size_bytes": job.get("size_bytes"),
        **link,
        "error": job.get("error"),
        "created_at": job["requested_at"],
        "updated_at": job["updated_at"],
        "finished_at": job.get("finished_at"),
    }


def _ok(model: type[BaseModel], status: int = 200) -> dict[int, Any]:
    return {status: {"description": "OK" if status == 200 else "Accepted", "content": {JSON: {"model": model}}}}


@export_routes.post(
    "/v2/segments/exports",
    summary="Export a segment",
    description="Starts an asynchronous export of the segment's members to a file (CSV, JSON lines or XLSX) and "
    "answers 202 at once; follow it at `GET /v2/segments/exports/{export_id}`.",
    responses={
        **_ok(ExportResponse, 202),
        **minerva.error_responses(
            401,
            404,
            409,
            422,
            429,
            500,
            503,
            notes={404: "Segment or fieldset not found", 422: "Validation error (e.g. a format not offered)"},
        ),
    },
    security=minerva.SECURITY,
    tags=TAGS,
)
def start_export(body: Annotated[ExportBody, Body()]):
    who = actor()

    def run() -> dict[str, Any]:
        job = exports.start(
            who,
            body.segment_id,
            fmt=body.format,
            fields=body.fields,
            fieldset_id=body.fieldset_id,
            surface="minerva",
        )
        return {"api_request_id": request_id(), **render(job, with_url=False)}

    answer = run_idempotent("export_segment", body.model_dump(), run)
    return Response(status_code=202, content_type=JSON, body=dumps(answer))


@export_routes.get(
    "/v2/segments/exports/<export_id>",
    summary="Read an export",
    description="The job's status (`queued`, `running` with the rows done, `succeeded`, `failed` with `error`), "
    "its row count and file size, and once succeeded a presigned URL of the file and when it expires.",
    responses={**_ok(ExportResponse), **minerva.error_responses(401, 404, 500, 503, notes={404: NOT_FOUND})},
    security=minerva.SECURITY,
    tags=TAGS,
)
def get_export(export_id: Annotated[str, Path(max_length=64)]):
    return minerva.ok(render(exports.get_job(actor(), export_id)))


@export_routes.get(
    "/v2/segments/exports",
    summary="List exports",
    description="The organisation's exports, newest first (of one segment with `segment_id`); no URLs: read one "
    "export for its URL.",
    responses={**_ok(ExportListResponse), **minerva.error_responses(401, 422, 500, 503)},
    security=minerva.SECURITY,
    tags=TAGS,
)
def list_exports(
    segment_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    jobs = exports.list_jobs(actor(), segment_id=segment_id, limit=limit)
    return minerva.ok({"results": {"items": [render(j, with_url=False) for j in jobs]}})
