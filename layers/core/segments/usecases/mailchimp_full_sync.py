"""The full Mailchimp sync of a segment, a job (SheepCRM `GET .../all/sync_mailchimp`): every current
member is pushed, and every email of the static segment that no current member has is removed; the
sync state's position moves to the ledger's end as read before the members (docs/decisions.md,
"Mailchimp audience sync"). The job is store/jobs.py's, read at the bulk-action notification route."""

from __future__ import annotations

from typing import Any

from segments import errors, queues
from segments.mailchimp import client, credentials
from segments.mailchimp.credentials import Credentials
from segments.models import Actor
from segments.observability import logger
from segments.store import jobs, ledger, records
from segments.store import mailchimp as state_store
from segments.store import segments as segment_store
from segments.store.segments import SegmentRecord
from segments.timefmt import iso, now
from segments.usecases import segments as usecase
from segments.usecases.mailchimp_push import (
    Pushed,
    fields_of,
    mailchimp_name,
    push,
    queue_url,
    record,
    split,
    static_segment,
)

ACTION = "sync_mailchimp"
LAST_RECEIVE = 5  # MailchimpSyncQueue's maxReceiveCount (template.yaml): then the DLQ


def request_full_sync(
    actor: Actor, segment_id: str, *, batch_size: int, segment_name: str | None, verbose: bool
) -> dict[str, Any]:
    """Store a full-sync job for a segment of the actor's org and queue it; the job."""
    if not 1 <= batch_size <= client.BATCH_MAX:
        raise errors.ValidationFailed(f"mailchimp_batch_size must be between 1 and {client.BATCH_MAX}")
    if segment_name is not None and not segment_name.strip():
        raise errors.ValidationFailed("segment_name must not be empty")
    segment = usecase.get_segment(actor, segment_id)
    given = {"segment_name": segment_name.strip()} if segment_name else {}
    at = iso(now())
    job = jobs.fresh(
        org_id=actor.org_id,
        bucket=actor.bucket,
        action=ACTION,
        segment=segment,
        request_id=actor.request_id,
        at=at,
        segment_name=(segment_name or "").strip()[: client.NAME_MAX] or None,
        target_name=mailchimp_name(segment, {**state_store.get_state(actor.org_id, segment.segment_id), **given}),
        rules=[],
        safe_mode=False,
        batch_size=batch_size,
        verbose=verbose,
        counts={"members_read": 0},
    )
    jobs.put_new(job)
    try:
        queues.send(queue_url(), {"kind": "full", "org_id": actor.org_id, "job_id": job["job_id"]})
    except errors.Retryable:
        jobs.advance(actor.org_id, job["job_id"], chunk=0, sets=_finished("stopped", "the sync could not be queued"))
        raise
    logger.info("mailchimp full sync queued", extra={"job_id": job["job_id"], "segment_id": job["segment_id"]})
    return job


def _finished(status: str, message: str, **more: Any) -> dict[str, Any]:
    return {"status": status, "message": message, "updated_at": iso(now()), **more}


def full_sync(org_id: str, job_id: str, *, receive_count: int = 1) -> str:
    try:
        return _full_sync(org_id, job_id)
    except client.Unavailable:
        if receive_count < LAST_RECEIVE:
            raise  # the queue delivers it again
        why = f"Mailchimp did not answer (429/5xx) on {LAST_RECEIVE} deliveries; request the sync again"
        jobs.advance(org_id, job_id, chunk=0, sets=_finished("stopped", why))
        return "stopped"


def _full_sync(org_id: str, job_id: str) -> str:
    job = jobs.get_job(org_id, job_id)
    if job is None or job["status"] not in jobs.RUNNING or int(job["chunk"]) != 0:
        return "dropped"
    segment_id = str(job["segment_id"])
    segment = segment_store.get_live(org_id, segment_id)
    if segment is None:
        jobs.advance(org_id, job_id, chunk=0, sets=_finished("stopped", "the segment was deleted"))
        return "stopped"
    creds = credentials.load(org_id)
    if creds is None:
        why = "the org has no Mailchimp credentials (segments-admin set-mailchimp)"
        jobs.advance(org_id, job_id, chunk=0, sets=_finished("stopped", why))
        return "stopped"
    state = state_store.get_state(org_id, segment_id)
    if job.get("segment_name"):
        state = {**state, "segment_name": job["segment_name"]}
    end = ledger.last_position(segment_id)  # before the members: every change up to it is in what follows
    name = mailchimp_name(segment, state)
    try:
        mc_segment = static_segment(creds, state, name)
        pushed, read, current = _push_members(creds, org_id, segment, mc_segment, int(job["batch_size"]))
        stale = [e for e in client.segment_emails(creds, mc_segment) if e.lower() not in current]
        removed = push(creds, mc_segment, [], stale, int(job["batch_size"]))
    except client.Refused as exc:
        jobs.advance(org_id, job_id, chunk=0, sets=_finished("stopped", f"Mailchimp refused the sync: {exc.detail}"))
        return "stopped"
    pushed.removed, pushed.batches = removed.removed, pushed.batches + removed.batches
    sets = {"segment_name": job["segment_name"]} if job.get("segment_name") else {}
    record(org_id, segment_id, state, creds, mc_segment, name, pushed, position=end, changes=read, extra=sets)
    message = (
        f"{read} members read, {len(current)} with an email: {pushed.added} added to the Mailchimp segment "
        f"{name!r}, {pushed.removed} removed from it; {pushed.subscribed} new contacts, {pushed.rejected} refused "
        f"by Mailchimp, {pushed.without_email} members without an email"
    )
    recent = pushed.batches[-20:] if job.get("verbose") else []
    jobs.advance(
        org_id, job_id, chunk=0, sets=_finished("done", message, chunk=1, counts={"members_read": read}, recent=recent)
    )
    return "done"


def _push_members(
    creds: Credentials, org_id: str, segment: SegmentRecord, mc_segment: str, size: int
) -> tuple[Pushed, int, set[str]]:
    """Every current member, a page of `size` at a time; (what was pushed, members read, their emails)."""
    total, read, emails, after = Pushed(), 0, set[str](), None
    paths = fields_of(org_id, segment)
    while True:
        page, after, _ = records.members_page(segment.segment_id, after=after, read=size)
        pids = [str(m["minerva_pid"]) for m in page]
        read += len(pids)
        people = records.person_records(org_id, pids, consistent=False)
        adds, _, without = split(pids, set(pids), people, paths)
        emails |= {e.lower() for e, _ in adds}
        if adds:
            part = push(creds, mc_segment, adds, [], size)
            total.subscribed += part.subscribed
            total.added += part.added
            total.rejected += part.rejected
            total.batches += part.batches
        total.without_email += without
        if after is None:
            return total, read, emails
