"""Export a segment's members to a file (CSV, JSON lines, XLSX, PDF) on S3, asynchronously; the one
engine behind Minerva's `/v2/segments/exports` and SheepCRM's `/all/excel|xlsx|pdf`.

A request (`start`) checks the segment and the columns, stores a job (store/exports.py), refuses it
(429) when the org already runs EXPORT_MAX_CONCURRENT jobs, and sends the first chunk's message,
`{org_id, export_id, chunk}`, to ExportQueue. ExportFunction does one chunk per message (`process`),
in the manner of rebuilds and bulk deletes:

1. read the job (consistent): a finished job's message, a message of a chunk already recorded or
   of a chunk ahead of the job is dropped; a redelivered message whose chunk is recorded sends the
   next message again (the chunk died after recording, before sending);
2. the segment must still be live (deleted meanwhile: the job fails, saying so);
3. CSV and JSON lines: pages of members (one Query each, by cursor) and their person records (one
   BatchGetItem per 100) are rendered until the chunk holds EXPORT_PART_BYTES (S3's multipart
   minimum, 5 MiB) or the segment ends; the bytes are uploaded as part `chunk + 1` of the job's
   multipart upload; the job advances (cursor, rows) by one conditional write; the last chunk
   completes the upload. A chunk done twice uploads the same part number again, which replaces it:
   nothing is doubled or missed. Memory holds one part, whatever the segment's size;
4. XLSX is written in one chunk (a workbook is a zip assembled at its end): xlsxwriter's
   constant_memory mode on /tmp, then uploaded from disk part by part; a killed worker starts the
   file again. PDF (at most EXPORT_PDF_MAX_ROWS rows) is one chunk in memory.

Which members: those active when their page is read that became members at or before the request
(their last add that changed anything, `last_op`'s time; else `last_added_at`): the file is the
membership at the request, less members removed before their page was read (docs/decisions.md,
"Exports").

The move to `succeeded` or `failed` is one conditional write; the table's stream carries it to the
publisher, which puts `Segment Export Finished` on the bus (events/outbox.py).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from segments import errors, queues
from segments.config import get_settings
from segments.external import files
from segments.formats import export_formats, pdf
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import exports as store
from segments.store import fieldsets, keys, records
from segments.store import segments as segment_store
from segments.timefmt import iso, now
from segments.usecases import chunks
from segments.usecases import segments as usecase
from segments.usecases.lookup import display_value

MAX_RECEIVES = 5  # ExportQueue's maxReceiveCount: the last delivery fails the job instead of the DLQ
RECENT_WINDOW_MS = 24 * 3600 * 1000  # jobs older than this no longer count as running (a dead worker)
PROGRESS_EVERY = 20  # pages between two progress notes of a one-chunk (XLSX) job
Send = Callable[[Mapping[str, Any]], None]


def queue_url() -> str:
    url = get_settings().export_queue_url
    if not url:
        raise RuntimeError("EXPORT_QUEUE_URL is not set")
    return url


def _send(message: Mapping[str, Any]) -> None:
    queues.send(queue_url(), message)


def resolve_fields(actor: Actor, fields: Sequence[str] | None, fieldset_id: str | None) -> list[str]:
    """The fields of the fieldset (when given) then those listed; NotFound for an unknown fieldset."""
    chosen: list[str] = []
    if fieldset_id:
        found = fieldsets.get(actor.org_id, fieldset_id)
        if found is None:
            raise errors.NotFound(f"Fieldset {fieldset_id} not found")
        chosen += found.fields
    try:
        return export_formats.check_fields([*chosen, *(fields or [])])
    except ValueError as exc:
        raise errors.ValidationFailed(f"Invalid 'fields': {exc}") from exc


def start(
    actor: Actor,
    segment_id: str,
    *,
    fmt: export_formats.Format,
    fields: Sequence[str] | None = None,
    fieldset_id: str | None = None,
    surface: export_formats.Surface,
    template: str | None = None,
    send: Send | None = None,
) -> dict[str, Any]:
    """Store an export job and queue its first chunk (`send` replaces the queue: the CLI runs the
    chunks itself); the job."""
    segment = usecase.get_segment(actor, segment_id)
    chosen = resolve_fields(actor, fields, fieldset_id)
    cap = get_settings().export_pdf_max_rows
    if fmt == "pdf" and int(segment.current_size or 0) > cap:
        raise errors.ValidationFailed(
            f"A PDF holds at most {cap:,} rows and the segment has {int(segment.current_size or 0):,} members: "
            "export it as a spreadsheet (xlsx) or CSV instead"
        )
    settings = get_settings()
    export_id = store.new_export_id()
    at = iso(now())
    job = {
        "export_id": export_id,
        "org_id": actor.org_id,
        "bucket": actor.bucket,
        "segment_id": segment.segment_id,
        "segment_name": segment.name,
        "format": fmt,
        "surface": surface,
        "fields": chosen,
        "fieldset_id": fieldset_id,
        "template": template,
        "columns": export_formats.columns(surface, chosen),
        "object_key": keys.export_object_key(actor.org_id, export_id, export_formats.EXTENSIONS[fmt]),
        "requested_at": at,
        "updated_at": at,
        "request_id": actor.request_id,
        "status": "queued",
        "chunk": 0,
        "cursor": None,
        "rows": 0,
    }
    store.put_new(job)
    since = int(time.time() * 1000) - RECENT_WINDOW_MS
    if store.running_since(actor.org_id, since) > settings.export_max_concurrent:
        store.delete(actor.org_id, export_id)
        raise errors.TooMany(
            f"At most {settings.export_max_concurrent} exports may run at once for an organisation; "
            "retry when one has finished"
        )
    try:
        (send or _send)({"org_id": actor.org_id, "export_id": export_id, "chunk": 0})
    except errors.Retryable:
        _fail(job, "the export could not be queued; request it again")
        raise
    metrics.add_metric(name="ExportsStarted", unit=MetricUnit.Count, value=1)
    logger.info("export queued", extra={"export_id": export_id, "segment_id": job["segment_id"], "format": fmt})
    return job


def get_job(actor: Actor, export_id: str) -> dict[str, Any]:
    """The actor's job; NotFound alike for a malformed, missing or another org's id."""
    return chunks.job_by_id(lambda canonical: store.get_job(actor.org_id, canonical), export_id, "Export not found")


def list_jobs(actor: Actor, *, segment_id: str | None, limit: int) -> list[dict[str, Any]]:
    return store.recent(actor.org_id, segment_id=segment_id, limit=limit)


@dataclass(frozen=True)
class Download:
    url: str
    expires_at: str
    filename: str


def download(job: Mapping[str, Any]) -> Download | None:
    """A presigned URL of a succeeded job's file (fresh at each read), else None."""
    if job.get("status") != "succeeded":
        return None
    ttl = get_settings().export_url_ttl_seconds
    name = f"{str(job.get('segment_name') or 'segment')[:80]}-{str(job['export_id'])[:8]}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    filename = f"{safe}.{export_formats.EXTENSIONS[str(job['format'])]}"
    url = files.presign(str(job["object_key"]), filename, ttl)
    return Download(url=url, expires_at=iso(now() + timedelta(seconds=ttl)), filename=filename)


def link_fields(job: Mapping[str, Any]) -> dict[str, Any]:
    """`url` and `url_expires_at` of a job as both surfaces and the CLI show them (null until it succeeded)."""
    link = download(job)
    return {"url": link.url if link else None, "url_expires_at": link.expires_at if link else None}


# ------------------------------------------------------------------ the worker

Status = Literal[
    "chunk done", "succeeded", "failed", "resent", "missing", "finished", "duplicate", "ahead", "lost race"
]


@dataclass(frozen=True)
class Outcome:
    status: Status
    next_message: Mapping[str, Any] | None = None


class Refused(Exception):
    """The job cannot be done; the reason is shown to the caller."""


def _fail(job: Mapping[str, Any], why: str) -> bool:
    upload_id = job.get("upload_id")
    if upload_id:
        files.abort(str(job["object_key"]), str(upload_id))
    done = store.advance(
        str(job["org_id"]),
        str(job["export_id"]),
        chunk=int(job["chunk"]),
        sets={"status": "failed", "error": why, "updated_at": iso(now()), "finished_at": iso(now())},
    )
    if done:
        metrics.add_metric(name="ExportsFailed", unit=MetricUnit.Count, value=1)
        logger.warning("export failed", extra={"export_id": job["export_id"], "reason": why})
    return done


def process(message: Mapping[str, Any], *, receive_count: int = 1, send: Send | None = None) -> Outcome:
    """Do one chunk of an export (see the module docstring)."""
    org_id, export_id, chunk = str(message["org_id"]), str(message["export_id"]), int(message["chunk"])
    job = store.get_job(org_id, export_id)
    if job is None:
        return _dropped("missing", message)
    if job["status"] not in store.RUNNING:
        return _dropped("finished", message)
    where = chunks.place(int(job["chunk"]), chunk, receive_count)
    if where == "resend":
        nxt = {"org_id": org_id, "export_id": export_id, "chunk": chunk + 1}
        (send or _send)(nxt)
        return Outcome("resent", nxt)
    if where != "run":
        return _dropped(where, message)
    if segment_store.get_live(org_id, str(job["segment_id"])) is None:
        _fail(job, "the segment was deleted while the export ran")
        return Outcome("failed")
    try:
        if job["format"] in ("csv", "jsonl"):
            return _chunk(job, send or _send)
        return _whole(job)
    except Refused as exc:
        _fail(job, str(exc))
        return Outcome("failed")


def _page(job: Mapping[str, Any], after: str | None, size: int) -> tuple[list[list[Any]], str | None]:
    """One page of members after PID `after`, as rows; the PID to continue after (None: the end)."""
    org_id, requested_at = str(job["org_id"]), str(job["requested_at"])
    page, after_pid, _ = records.members_page(str(job["segment_id"]), after=after, read=size)
    members = [m for m in page if str(m.get("active_since") or m.get("last_added_at") or "") <= requested_at]
    cols = list(job["columns"])
    attributes = export_formats.record_attributes(cols)
    pids = [m["minerva_pid"] for m in members]
    found = records.person_attributes(org_id, pids, attributes) if attributes else {}
    rows = []
    for m in members:
        rec = found.get(m["minerva_pid"])
        shown = display_value(rec, m["minerva_pid"]) if "display_value" in cols else ""
        rows.append(export_formats.row(cols, job["surface"], str(job["bucket"]), m, rec, shown))
    return rows, after_pid


def _encode(job: Mapping[str, Any], rows: list[list[Any]]) -> bytes:
    if job["format"] == "jsonl":
        return export_formats.jsonl_bytes(list(job["columns"]), rows)
    return export_formats.csv_bytes(rows)


def _chunk(job: Mapping[str, Any], send: Send) -> Outcome:
    settings = get_settings()
    org_id, export_id, chunk = str(job["org_id"]), str(job["export_id"]), int(job["chunk"])
    key, ext = str(job["object_key"]), export_formats.EXTENSIONS[str(job["format"])]
    body = bytearray()
    if chunk == 0 and job["format"] == "csv":
        body += ("\ufeff" if job["surface"] == "sheep" else "").encode() + export_formats.csv_bytes([job["columns"]])
    cursor, rows = job.get("cursor"), int(job.get("rows") or 0)
    while True:
        page, cursor = _page(job, cursor, settings.export_page_size)
        body += _encode(job, page)
        rows += len(page)
        if cursor is None or len(body) >= settings.export_part_bytes:
            break
    done = cursor is None
    sets: dict[str, Any] = {"chunk": chunk + 1, "cursor": cursor, "rows": rows, "updated_at": iso(now())}
    if done and chunk == 0:
        sets["size_bytes"] = files.put(key, bytes(body), ext)
    else:
        upload_id = _upload_id(job)
        try:
            files.part(key, upload_id, chunk + 1, bytes(body))
            if done:
                sets["size_bytes"] = files.complete(key, upload_id, chunk + 1)
        except files.UploadGone:
            stored = files.size(key)  # an earlier attempt of this last chunk completed the upload
            if not done or stored is None:
                raise
            sets["size_bytes"] = stored
    if done:
        sets |= {"status": "succeeded", "finished_at": iso(now())}
    elif chunk == 0:
        sets["status"] = "running"
    if not store.advance(org_id, export_id, chunk=chunk, sets=sets):
        return _dropped("lost race", job)
    metrics.add_metric(name="ExportChunks", unit=MetricUnit.Count, value=1)
    logger.info("export chunk done", extra={"export_id": export_id, "chunk": chunk, "rows": rows, "done": done})
    if done:
        metrics.add_metric(name="ExportsSucceeded", unit=MetricUnit.Count, value=1)
        return Outcome("succeeded")
    nxt = {"org_id": org_id, "export_id": export_id, "chunk": chunk + 1}
    send(nxt)
    return Outcome("chunk done", nxt)


def _upload_id(job: Mapping[str, Any]) -> str:
    """The job's multipart upload, opened by its first chunk (once, whatever attempt opens it)."""
    if job.get("upload_id"):
        return str(job["upload_id"])
    key, ext = str(job["object_key"]), export_formats.EXTENSIONS[str(job["format"])]
    upload_id = files.begin(key, ext)
    if store.set_upload(str(job["org_id"]), str(job["export_id"]), upload_id):
        return upload_id
    files.abort(key, upload_id)  # another attempt opened one first: use that
    again = store.get_job(str(job["org_id"]), str(job["export_id"])) or {}
    return str(again["upload_id"])


def _all_rows(job: Mapping[str, Any], cap: int | None) -> Any:
    """Every row of the segment, page by page (a generator); Refused past `cap` rows."""
    settings = get_settings()
    cursor: str | None = None
    rows, pages = 0, 0
    while True:
        page, cursor = _page(job, cursor, settings.export_page_size)
        rows += len(page)
        pages += 1
        if cap is not None and rows > cap:
            raise Refused(
                f"A PDF holds at most {cap:,} rows and the segment has more: export it as xlsx or CSV instead"
            )
        yield from page
        if pages % PROGRESS_EVERY == 0:
            store.note_rows(str(job["org_id"]), str(job["export_id"]), chunk=int(job["chunk"]), rows=rows)
        if cursor is None:
            return


def _whole(job: Mapping[str, Any]) -> Outcome:
    """An XLSX or PDF job, in one chunk."""
    settings = get_settings()
    org_id, export_id = str(job["org_id"]), str(job["export_id"])
    key, cols = str(job["object_key"]), list(job["columns"])
    rows = 0
    if job["format"] == "pdf":
        table = [[export_formats.text(v) for v in r] for r in _all_rows(job, settings.export_pdf_max_rows)]
        rows = len(table)
        title = f"{job.get('segment_name') or 'Segment'}: {rows:,} members, {job['requested_at']}"
        size = files.put(key, pdf.table(title, cols, table), "pdf")
    else:
        import xlsxwriter  # the XLSX writer, imported by the jobs that write one

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "export.xlsx")
            options = {"constant_memory": True, "tmpdir": tmp, "strings_to_formulas": False, "strings_to_urls": False}
            workbook = xlsxwriter.Workbook(path, options)
            sheets = export_formats.XlsxSheets(workbook, cols, export_formats.XLSX_SHEET_ROWS)
            for values in _all_rows(job, None):
                sheets.write(values)
                rows += 1
            sheets.finish()
            workbook.close()
            with open(path, "rb") as handle:
                size = files.upload_file(key, handle, "xlsx", settings.export_part_bytes)
    sets = {
        "chunk": int(job["chunk"]) + 1,
        "rows": rows,
        "size_bytes": size,
        "status": "succeeded",
        "updated_at": iso(now()),
        "finished_at": iso(now()),
    }
    if not store.advance(org_id, export_id, chunk=int(job["chunk"]), sets=sets):
        return _dropped("lost race", job)
    metrics.add_metric(name="ExportsSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("export done", extra={"export_id": export_id, "rows": rows, "format": job["format"]})
    return Outcome("succeeded")


def _dropped(status: Any, message: Mapping[str, Any]) -> Outcome:
    metrics.add_metric(name="ExportMessagesDropped", unit=MetricUnit.Count, value=1)
    logger.info("export message dropped", extra={"status": status, "export_id": message.get("export_id")})
    return Outcome(status)


def process_message(body: str, *, receive_count: int = 1) -> Outcome:
    """A queue message's body; a malformed one raises ValidationFailed (it lands in the DLQ). On its
    last delivery (MAX_RECEIVES) a chunk that fails marks the job failed, naming the error's kind,
    rather than leaving it running."""
    try:
        message = json.loads(body)
        uuid.UUID(str(message["export_id"]))
        str(message["org_id"])
        int(message["chunk"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ValidationFailed("malformed export message") from exc
    try:
        return process(message, receive_count=receive_count)
    except Exception as exc:
        if receive_count < MAX_RECEIVES:
            raise
        job = store.get_job(str(message["org_id"]), str(message["export_id"]))
        if job is not None and job["status"] in store.RUNNING and int(job["chunk"]) == int(message["chunk"]):
            _fail(job, f"the export failed {receive_count} times ({type(exc).__name__}); request it again")
            return Outcome("failed")
        raise
