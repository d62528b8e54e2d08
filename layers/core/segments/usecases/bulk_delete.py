"""Delete the person records of a segment's members, asynchronously (SheepCRM
`POST .../segment/{uid}/action/delete`).

A request (`start`) checks the segment (live, of the caller's org; with `safe_mode`, its membership
complete: `build_state` ready), stores a job item (store/jobs.py) and sends the first chunk's
message, `{org_id, job_id, chunk}`, to BulkDeleteQueue. BulkDeleteFunction does one chunk per
message (`process`), in the manner of rebuilds (usecases/rebuild.py):

1. read the job (consistent): a finished job's message, a message of a chunk already recorded, or
   of a chunk ahead of the job, is dropped (a redelivered message whose chunk is recorded sends
   the next message again, so a chunk that died after recording still continues the chain);
2. read the segment: deleted meanwhile, or (safe mode) redefined or building, stops the job;
3. one Query of the segment's member items after the job's cursor, `batch_size` items evaluated;
   members added after the request (`last_added_at` later than `requested_at`) are left alone: the
   job deletes the resultset of its request, not people who join while it runs;
4. the page's person records (consistent BatchGetItem), the optional extra `rules` applied to
   them, and the matching records deleted (BatchWriteItem) from the org's people partition;
5. the job advanced by one conditional write (from chunk n to n + 1, counts, cursor; `done` after
   the last page); then the next message sent.

Deleted records leave the org's rule segments through the ordinary path: each delete is a REMOVE
on the table's stream, which RuleMembershipFunction applies (usecases/record_removal.py) through the
member-write path with reason `rule`. Static segments keep their members (PIDs added by hand).

A chunk that dies anywhere is delivered again and redone: deletes are idempotent, and records a
dead attempt deleted are counted under `not_found` by the redo (so `deleted + not_found +
filtered_out` is exact for the members read, `deleted` alone may undercount after a crash).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from segments import errors, queues
from segments import rules as grammar
from segments.config import get_settings
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import jobs, records
from segments.store import segments as segment_store
from segments.store.segments import SegmentRecord
from segments.timefmt import iso, now
from segments.usecases import chunks
from segments.usecases import segments as usecase
from segments.usecases.rule_definitions import person

BATCH_MAX = 2_500
BATCH_DEFAULT = 100
RECENT_MAX = 20  # chunk summaries a verbose job keeps
COUNTS = ("members_read", "deleted", "not_found", "filtered_out", "joined_after")
Status = Literal["queued", "running", "done", "stopped"]


def queue_url() -> str:
    url = get_settings().bulk_delete_queue_url
    if not url:
        raise RuntimeError("BULK_DELETE_QUEUE_URL is not set")
    return url


def check_batch_size(batch_size: int) -> int:
    if batch_size > BATCH_MAX:
        raise errors.ValidationFailed(f"Batch size must be at most {BATCH_MAX}")
    if batch_size < 1:
        raise errors.ValidationFailed("Batch size must be at least 1")
    return batch_size


def extra_rules(value: Any) -> list[dict[str, Any]]:
    """The optional extra rules: a list of rules (all must match), one rule object, or a boolean
    tree ({"all"|"any"|"not": ...}, a `raw` rule's value); validated as a segment's rules are."""
    if value is None:
        return []
    if isinstance(value, dict) and "field" not in value and len(value) == 1:
        value = [{"field": "*", "operator": "raw", "value": value}]
    elif isinstance(value, dict):
        value = [value]
    return [r.model_dump() for r in grammar.validate_rules(value)]


def _predicate(rules: list[dict[str, Any]]) -> Callable[[Mapping[str, Any]], bool]:
    if not rules:
        return lambda record: True
    return grammar.compile_rules(grammar.validate_rules(rules))


def start(
    actor: Actor, segment_id: str, *, rules: list[dict[str, Any]], safe_mode: bool, batch_size: int, verbose: bool
) -> dict[str, Any]:
    """Store a job deleting the person records of the segment's members and queue its first chunk;
    the job. Conflict when `safe_mode` and the segment's membership is still being built."""
    check_batch_size(batch_size)
    segment = usecase.get_segment(actor, segment_id)
    if safe_mode and segment.build_state != "ready":
        raise errors.Conflict(
            f"Segment {segment.segment_id} is {segment.segment_type} and its membership is still being "
            f"built (build_state building, definition_version {segment.definition_version}): its members are not "
            "yet those of its rules. Wait for build_state ready, or send safe_mode=false"
        )
    at = iso(now())
    job = jobs.fresh(
        org_id=actor.org_id,
        bucket=actor.bucket,
        action="delete",
        segment=segment,
        request_id=actor.request_id,
        at=at,
        rules=rules,
        safe_mode=safe_mode,
        batch_size=batch_size,
        verbose=verbose,
        counts=dict.fromkeys(COUNTS, 0),
    )
    jobs.put_new(job)
    try:
        queues.send(queue_url(), {"org_id": actor.org_id, "job_id": job["job_id"], "chunk": 0})
    except errors.Retryable:
        jobs.advance(actor.org_id, job["job_id"], chunk=0, sets=_stopped("the job could not be queued; send it again"))
        raise
    metrics.add_metric(name="BulkDeletesStarted", unit=MetricUnit.Count, value=1)
    logger.info("bulk delete queued", extra={"job_id": job["job_id"], "segment_id": job["segment_id"]})
    return job


def get_job(actor: Actor, job_id: str) -> dict[str, Any]:
    """The actor's job; NotFound alike for a malformed, missing or another org's id."""
    return chunks.job_by_id(lambda canonical: jobs.get_job(actor.org_id, canonical), job_id, "Notification not found")


@dataclass(frozen=True)
class Outcome:
    status: Literal["chunk done", "done", "stopped", "resent", "missing", "finished", "duplicate", "ahead", "lost race"]
    next_message: Mapping[str, Any] | None = None


def _stopped(why: str) -> dict[str, Any]:
    return {"status": "stopped", "message": why, "updated_at": iso(now())}


def process(message: Mapping[str, Any], *, receive_count: int = 1) -> Outcome:
    """Do one chunk of a bulk delete (see the module docstring)."""
    org_id, job_id, chunk = str(message["org_id"]), str(message["job_id"]), int(message["chunk"])
    job = jobs.get_job(org_id, job_id)
    if job is None:
        return _dropped("missing", message)
    if job["status"] not in jobs.RUNNING:
        return _dropped("finished", message)
    where = chunks.place(int(job["chunk"]), chunk, receive_count)
    if where == "resend":
        nxt = {"org_id": org_id, "job_id": job_id, "chunk": chunk + 1}
        queues.send(queue_url(), nxt)  # recorded, then died before sending: continue the chain
        return Outcome("resent", nxt)
    if where != "run":
        return _dropped(where, message)

    segment = segment_store.get_live(org_id, str(job["segment_id"]))
    why = _why_stop(job, segment)
    if why:
        jobs.advance(org_id, job_id, chunk=chunk, sets=_stopped(why))
        logger.warning("bulk delete stopped", extra={"job_id": job_id, "reason": why})
        return Outcome("stopped")

    page, after, evaluated = records.members_page(
        str(job["segment_id"]), after=job.get("cursor"), read=int(job["batch_size"])
    )
    counts = {k: int((job.get("counts") or {}).get(k, 0)) for k in COUNTS}
    requested_at = str(job["requested_at"])
    pids = [m["minerva_pid"] for m in page if str(m.get("last_added_at") or "") <= requested_at]
    counts["joined_after"] += len(page) - len(pids)
    counts["members_read"] += len(pids)
    found = records.person_records(org_id, pids, consistent=True)
    matches = _predicate(list(job.get("rules") or []))
    doomed = [pid for pid in pids if pid in found and matches(person(found[pid]))]
    records.delete_people(org_id, doomed)
    counts["deleted"] += len(doomed)
    counts["not_found"] += len(pids) - len(found)
    counts["filtered_out"] += len(found) - len(doomed)

    done = after is None
    sets: dict[str, Any] = {
        "chunk": chunk + 1,
        "cursor": after,
        "counts": counts,
        "status": "done" if done else "running",
        "updated_at": iso(now()),
    }
    if job.get("verbose"):
        summary = {"chunk": chunk, "evaluated": evaluated, "deleted": len(doomed), "first": None, "last": None}
        if pids:
            summary |= {"first": pids[0], "last": pids[-1]}
        sets["recent"] = [*list(job.get("recent") or []), summary][-RECENT_MAX:]
    if not jobs.advance(org_id, job_id, chunk=chunk, sets=sets):
        return _dropped("lost race", message)
    metrics.add_metric(name="BulkDeleteChunks", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PersonRecordsDeleted", unit=MetricUnit.Count, value=len(doomed))
    logger.info("bulk delete chunk done", extra={"job_id": job_id, "chunk": chunk, **counts, "done": done})
    if done:
        return Outcome("done")
    nxt = {"org_id": org_id, "job_id": job_id, "chunk": chunk + 1}
    queues.send(queue_url(), nxt)
    return Outcome("chunk done", nxt)


def _why_stop(job: Mapping[str, Any], segment: SegmentRecord | None) -> str | None:
    if segment is None:
        return "the segment was deleted while the job ran"
    if not job.get("safe_mode"):
        return None
    if (segment.definition_version or 1) != int(job["definition_version"]):
        return "safe mode: the segment's definition changed while the job ran"
    if (segment.build_state or "ready") != "ready":
        return "safe mode: the segment's membership is being rebuilt"
    return None


def _dropped(status: Any, message: Mapping[str, Any]) -> Outcome:
    metrics.add_metric(name="BulkDeleteMessagesDropped", unit=MetricUnit.Count, value=1)
    logger.info("bulk delete message dropped", extra={"status": status, "job_id": message.get("job_id")})
    return Outcome(status)


def process_message(body: str, *, receive_count: int = 1) -> Outcome:
    """A queue message's body; a malformed one raises ValidationFailed (it lands in the DLQ)."""
    try:
        message = json.loads(body)
        uuid.UUID(str(message["job_id"]))
        str(message["org_id"])
        int(message["chunk"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ValidationFailed("malformed bulk delete message") from exc
    return process(message, receive_count=receive_count)
