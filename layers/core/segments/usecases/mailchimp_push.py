"""Pushing members to a segment's Mailchimp static segment: what the incremental sync
(usecases/mailchimp_sync.py) and the full sync (usecases/mailchimp_full_sync.py) share: the merge
fields chosen, the static segment found or made, the batches sent, and the state recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segments.config import get_settings
from segments.mailchimp import client
from segments.mailchimp.credentials import Credentials
from segments.mailchimp.fields import DEFAULT_FIELDS, email_of, merge_fields
from segments.observability import MetricUnit, logger, metrics
from segments.store import fieldsets
from segments.store import mailchimp as state_store
from segments.store.segments import SegmentRecord
from segments.timefmt import iso, now


def queue_url() -> str:
    url = get_settings().mailchimp_sync_queue_url
    if not url:
        raise RuntimeError("MAILCHIMP_SYNC_QUEUE_URL is not set")
    return url


def fields_of(org_id: str, segment: SegmentRecord) -> Sequence[str]:
    """The person-record fields sent as merge fields: those of the segment's fieldset when it names
    one that still exists (one GetItem), else DEFAULT_FIELDS (a fieldset deleted since is logged)."""
    if not segment.fieldset_id:
        return DEFAULT_FIELDS
    found = fieldsets.get(org_id, segment.fieldset_id)
    if found is None:
        logger.warning(
            "mailchimp sync: the segment's fieldset is gone, sending the default merge fields",
            extra={"org_id": org_id, "segment_id": segment.segment_id, "fieldset_id": segment.fieldset_id},
        )
        return DEFAULT_FIELDS
    return found.fields


def mailchimp_name(segment: SegmentRecord, state: Mapping[str, Any]) -> str:
    return str(state.get("segment_name") or segment.name)[: client.NAME_MAX]


@dataclass
class Pushed:
    subscribed: int = 0  # contacts created in the audience
    added: int = 0  # emails added to the static segment
    removed: int = 0
    rejected: int = 0  # contacts Mailchimp refused (bad address, compliance state)
    without_email: int = 0
    batches: list[dict[str, int]] = field(default_factory=list)


def static_segment(creds: Credentials, state: Mapping[str, Any], name: str) -> str:
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
    mc_segment = static_segment(creds, state, name)
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


def split(
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


def record(
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
