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
3. `{"kind": "full", org_id, job_id}`: `GET .../all/sync_mailchimp`, the full sync
   (usecases/mailchimp_full_sync.py).

What both syncs send, and how, is usecases/mailchimp_push.py.

The position advances only over ledger entries older than the member-write lease (lease_seconds):
a writer holding the lease may still be adding entries of an earlier time, so newer entries are
read again next time. Reconciling against current membership makes reading an entry twice harmless.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from segments import errors, queues
from segments.config import get_settings
from segments.events.outbox import MEMBERSHIP_CHANGED
from segments.mailchimp import client, credentials
from segments.mailchimp.credentials import Credentials
from segments.observability import logger
from segments.store import ledger, members, records
from segments.store import mailchimp as state_store
from segments.store import segments as segment_store
from segments.timefmt import iso, now
from segments.usecases import mailchimp_full_sync
from segments.usecases.mailchimp_push import fields_of, mailchimp_name, push_to, queue_url, record, split

LEDGER_PAGE = 100


# ------------------------------------------------------------------ 1. a membership change


def on_membership_changed(detail: Mapping[str, Any]) -> str:
    """Schedule one sync of the segment, unless one is pending or the segment does not sync."""
    org_id, segment_id = str(detail["org_id"]), str(detail["segment_id"])
    segment = segment_store.get_live(org_id, segment_id, consistent=False)
    if segment is None or not segment.mailchimp_sync:
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


# ------------------------------------------------------------------ 2. the incremental sync


def sync(org_id: str, segment_id: str) -> str:
    """Apply the ledger's changes since the last sync (see the module docstring)."""
    state_store.clear_pending(org_id, segment_id)
    segment = segment_store.get_live(org_id, segment_id)
    if segment is None or not segment.mailchimp_sync:
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
    adds, removes, without = split(pids, active, people, fields_of(org_id, segment))
    name = mailchimp_name(segment, state)
    mc_segment, pushed = push_to(creds, state, name, adds, removes, client.BATCH_MAX)
    pushed.without_email = without
    record(org_id, segment_id, state, creds, mc_segment, name, pushed, position=new_position, changes=len(pids))
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
            return mailchimp_full_sync.full_sync(org_id, ident, receive_count=receive_count)
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
