"""Mailchimp audience sync: a segment with `mailchimp_sync: true` is kept in a static segment (a
tag) of its name in the org's audience (docs/decisions.md, "Mailchimp audience sync").

Three messages arrive on MailchimpSyncQueue (`process_message`):

1. `Segment Membership Changed` from the bus (EventBridge rule): the segment is read; when it
   syncs, a conditional write sets its "sync pending" marker, and only the write that set it sends
   a delayed `{"kind": "sync"}` message: a burst of changes is one sync.
2. `{"kind": "sync", org_id, segment_id}`: the incremental sync. It clears the marker first (a
   change from then on schedules the next sync), reads the ledger after the stored position
   (strongly consistent), and reconciles each PID it names against the segment now: a current
   member with an email is subscribed (if new to the audience) and added to the static segment, a
   PID no longer a member has its email removed from it. Reads are O(changes): one Query of the
   new ledger entries, two BatchGetItem per 100 PIDs (memberships, person records).
3. `{"kind": "full", org_id, job_id}`: `GET .../all/sync_mailchimp` (a job, store/jobs.py): every
   current member is pushed, and every email of the static segment that no current member has is
   removed; the position moves to the ledger's end as read before the members.

The position advances only over ledger entries older than the member-write lease (lease_seconds):
a writer holding the lease may still be adding entries of an earlier time, so newer entries are
read again next time. Reconciling against current membership makes reading an entry twice harmless.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from segments import errors, queues
from segments.config import get_settings
from segments.events.outbox import MEMBERSHIP_CHANGED
from segments.mailchimp import client, credentials
from segments.mailchimp.credentials import Credentials
from segments.mailchimp.fields import DEFAULT_FIELDS, email_of, merge_fields
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import jobs, ledger, members, records
from segments.store import mailchimp as state_store
from segments.store import segments as segment_store
from segments.timefmt import iso, now
from segments.usecases import segments as usecase

ACTION = "sync_mailchimp"
LEDGER_PAGE = 100
LAST_RECEIVE = 5  # MailchimpSyncQueue's maxReceiveCount (template.yaml): then the DLQ


def queue_url() -> str:
    url = get_settings().mailchimp_sync_queue_url
    if not url:
        raise RuntimeError("MAILCHIMP_SYNC_QUEUE_URL is not set")
    return url


def fields_of(org_id: str, segment: Mapping[str, Any]) -> Sequence[str]:
    """The person-record fields sent as merge fields (the segment's fieldset, when it names one)."""
    return DEFAULT_FIELDS


def mailchimp_name(segment: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return str(state.get("segment_name") or segment["name"])[: client.NAME_MAX]


# ------------------------------------------------------------------ 1. a membership change


def on_membership_changed(detail: Mapping[str, Any]) -> str:
    """Schedule one sync of the segment, unless one is pending or the segment does not sync."""
    org_id, segment_id = str(detail["org_id"]), str(detail["segment_id"])
    segment = segment_store.get_live(org_id, segment_id, consistent=False)
    if segment is None or not segment.get("mailchimp_sync"):
        return "not synced"
    delay = get_settings().mailchimp_sync_delay_seconds
    now_ms = int(time.time() * 1000)
    until_ms = now_ms + (2 * delay + 60) * 1000  # a lost sync message lets the next change schedule again
    if not state_store.mark_pending(org_id, segment_id, now_ms=now_ms, until_ms=until_ms):
        return "already pending"
    try:
        queues.send(queue_url(), {"kind": "sync", "org_id": org_id, "segment_id": segment_id}, delay_seconds=delay)
    except errors.Retryable:
        state_store.clear_pending(org_id, segment_id)
        raise
    logger.info("mailchimp sync scheduled", extra={"segment_id": segment_id, "delay_seconds": delay})
    return "scheduled"


# ------------------------------------------------------------------ pushing to Mailchimp


@dataclass
class Pushed:
    subscribed: int = 0  # contacts created in the audience
    added: int = 0  # emails added to the static segment
    removed: int = 0
    rejected: int = 0  # contacts Mailchimp refused (bad address, compliance state)
    without_email: int = 0
    batches: list[dict[str, int]] = field(default_factory=list)


def _static_segment(creds: Credentials, state: Mapping[str, Any], name: str) -> str:
    """The audience's static segment for this segment: the stored one (renamed if the name changed),
    else one found by name, else a new one."""
    known = state.get("mailchimp_segment_id")
    if known and state.get("audience_id") == creds.audience_id:
        if state.get("mailchimp_segment_name") != name:
            try:
                client.rename_segment(creds, str(known), name)
            except client.NotFound:
                known = None
        if known:
            return str(known)
    return client.find_static_segment(creds, name) or client.create_static_segment(creds, name)


def push_to(
    creds: Credentials,
    state: Mapping[str, Any],
    name: str,
    adds: Sequence[tuple[str, Mapping[str, str]]],
    removes: Sequence[str],
    size: int,
) -> tuple[str, Pushed]:
    """`push` to the segment's static segment; one deleted in Mailchimp meanwhile (404) is found by
    name or made again, and the push repeated (it is idempotent). (its id, what was pushed)"""
    mc_segment = _static_segment(creds, state, name)
    try:
        return mc_segment, push(creds, mc_segment, adds, removes, size)
    except client.NotFound:
        logger.info("mailchimp static segment gone: made again", extra={"mailchimp_segment_id": mc_segment})
        mc_segment = client.find_static_segment(creds, name) or client.create_static_segment(creds, name)
        return mc_segment, push(creds, mc_segment, adds, removes, size)


def push(
    creds: Credentials,
    mc_segment: str,
    adds: Sequence[tuple[str, Mapping[str, str]]],
    removes: Sequence[str],
    size: int,
) -> Pushed:
    """Subscribe `adds` (new contacts only) and put them in the static segment; take `removes` out.
    Batches of `size` (≤ 500): per batch one subscribe call and one segment call."""
    out = Pushed()
    for start in range(0, max(len(adds), len(removes)), size):
        chunk = adds[start : start + size]
        if chunk:
            subscribed = client.subscribe(creds, chunk)
            out.subscribed += subscribed["created"]
            out.rejected += subscribed["rejected"]
        changed = client.change_segment(creds, mc_segment, [e for e, _ in chunk], removes[start : start + size])
        out.added += changed["added"]
        out.removed += changed["removed"]
        out.batches.append({"members": len(chunk), "removed": changed["removed"], "added": changed["added"]})
    return out


def _split(
    pids: Iterable[str], active: set[str], people: Mapping[str, Mapping[str, Any]], paths: Sequence[str]
) -> tuple[list[tuple[str, dict[str, str]]], list[str], int]:
    """(adds: (email, merge fields) of current members, removes: emails of the others that no current
    member shares, members without an email)."""
    adds: dict[str, tuple[str, dict[str, str]]] = {}
    gone: dict[str, str] = {}
    without = 0
    for pid in pids:
        record = people.get(pid)
        email = email_of(record) if record else None
        if email is None:
            without += pid in active
            continue
        if pid in active:
            adds.setdefault(email.lower(), (email, merge_fields(record or {}, paths)))
        else:
            gone.setdefault(email.lower(), email)
    removes = [email for low, email in gone.items() if low not in adds]
    return list(adds.values()), removes, without


# ------------------------------------------------------------------ 2. the incremental sync


def sync(org_id: str, segment_id: str) -> str:
    """Apply the ledger's changes since the last sync (see the module docstring)."""
    state_store.clear_pending(org_id, segment_id)
    segment = segment_store.get_live(org_id, segment_id)
    if segment is None or not segment.get("mailchimp_sync"):
        return "not synced"
    creds = _credentials(org_id, segment_id)
    if creds is None:
        return "no credentials"
    state = state_store.get_state(org_id, segment_id)
    position = state.get("position")
    settled = iso(now() - timedelta(seconds=get_settings().lease_seconds))
    touched: dict[str, None] = {}
    new_position, unsettled = position, False
    for entry in ledger.read_from(segment_id, position, page=LEDGER_PAGE, consistent=True):
        if entry["sk"] == position:
            continue
        touched.update(dict.fromkeys(str(p) for p in entry.get("pids") or []))
        unsettled = unsettled or str(entry["at"]) >= settled
        if not unsettled:
            new_position = str(entry["sk"])
    if not touched:
        return "nothing to sync"
    pids = list(touched)
    current = members.get_many(segment_id, pids)
    active = {p for p, m in current.items() if m.get("active")}
    people = records.person_records(org_id, pids, consistent=False)
    adds, removes, without = _split(pids, active, people, fields_of(org_id, segment))
    name = mailchimp_name(segment, state)
    mc_segment, pushed = push_to(creds, state, name, adds, removes, client.BATCH_MAX)
    pushed.without_email = without
    _record(org_id, segment_id, state, creds, mc_segment, name, pushed, position=new_position, changes=len(pids))
    return "synced"


def _credentials(org_id: str, segment_id: str) -> Credentials | None:
    creds = credentials.load(org_id)
    if creds is None:
        why = "the org has no Mailchimp credentials (segments-admin set-mailchimp)"
        state = state_store.get_state(org_id, segment_id)
        state_store.save(
            org_id,
            segment_id,
            expected_position=state.get("position"),
            sets={"last_error": why, "failed_at": iso(now())},
        )
        logger.warning("mailchimp sync skipped", extra={"segment_id": segment_id, "reason": why})
    return creds


def _record(
    org_id: str,
    segment_id: str,
    state: Mapping[str, Any],
    creds: Credentials,
    mc_segment: str,
    name: str,
    pushed: Pushed,
    *,
    position: str | None,
    changes: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    counts = {k: getattr(pushed, k) for k in ("subscribed", "added", "removed", "rejected", "without_email")}
    sets: dict[str, Any] = {
        "mailchimp_segment_id": mc_segment,
        "mailchimp_segment_name": name,
        "audience_id": creds.audience_id,
        "last_synced_at": iso(now()),
        "last_sync": {"changes": changes, **counts},
        "last_error": None,
        **(extra or {}),
    }
    if position is not None:
        sets["position"] = position
    if not state_store.save(org_id, segment_id, expected_position=state.get("position"), sets=sets):
        logger.info("mailchimp sync state moved meanwhile", extra={"segment_id": segment_id})
    metrics.add_metric(name="MailchimpSyncs", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="MailchimpBatches", unit=MetricUnit.Count, value=len(pushed.batches))
    logger.info("mailchimp sync done", extra={"segment_id": segment_id, "changes": changes, **counts})


# ------------------------------------------------------------------ 3. the full sync (a job)


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
        target_name=mailchimp_name(segment, {**state_store.get_state(actor.org_id, segment["segment_id"]), **given}),
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
        mc_segment = _static_segment(creds, state, name)
        pushed, read, current = _push_members(creds, org_id, segment, mc_segment, int(job["batch_size"]))
        stale = [e for e in client.segment_emails(creds, mc_segment) if e.lower() not in current]
        removed = push(creds, mc_segment, [], stale, int(job["batch_size"]))
    except client.Refused as exc:
        jobs.advance(org_id, job_id, chunk=0, sets=_finished("stopped", f"Mailchimp refused the sync: {exc.detail}"))
        return "stopped"
    pushed.removed, pushed.batches = removed.removed, pushed.batches + removed.batches
    sets = {"segment_name": job["segment_name"]} if job.get("segment_name") else {}
    _record(org_id, segment_id, state, creds, mc_segment, name, pushed, position=end, changes=read, extra=sets)
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
    creds: Credentials, org_id: str, segment: Mapping[str, Any], mc_segment: str, size: int
) -> tuple[Pushed, int, set[str]]:
    """Every current member, a page of `size` at a time; (what was pushed, members read, their emails)."""
    total, read, emails, after = Pushed(), 0, set[str](), None
    paths = fields_of(org_id, segment)
    while True:
        page, after, _ = records.members_page(str(segment["segment_id"]), after=after, read=size)
        pids = [str(m["minerva_pid"]) for m in page]
        read += len(pids)
        people = records.person_records(org_id, pids, consistent=False)
        adds, _, without = _split(pids, set(pids), people, paths)
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


# ------------------------------------------------------------------ the queue


def process_message(body: str, *, receive_count: int = 1) -> str:
    """One MailchimpSyncQueue message (see the module docstring); a malformed one raises
    ValidationFailed (it lands in the DLQ)."""
    try:
        message = json.loads(body)
        if message.get("detail-type") == MEMBERSHIP_CHANGED:
            detail = message["detail"]
            return on_membership_changed({"org_id": str(detail["org_id"]), "segment_id": str(detail["segment_id"])})
        kind = message["kind"]
        org_id = str(message["org_id"])
        ident = str(uuid.UUID(str(message["segment_id" if kind == "sync" else "job_id"])))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.ValidationFailed("malformed mailchimp sync message") from exc
    try:
        if kind == "sync":
            return sync(org_id, ident)
        if kind == "full":
            return full_sync(org_id, ident, receive_count=receive_count)
    except client.Refused as exc:
        # a bad key or audience: retrying does not help; the state says why
        state = state_store.get_state(org_id, ident) if kind == "sync" else {}
        if kind == "sync":
            state_store.save(
                org_id,
                ident,
                expected_position=state.get("position"),
                sets={"last_error": f"Mailchimp refused the sync: {exc.detail}", "failed_at": iso(now())},
            )
        logger.warning("mailchimp refused the sync", extra={"status": exc.status, "kind": kind})
        return "refused"
    raise errors.ValidationFailed(f"unknown mailchimp sync message kind {kind!r}")
