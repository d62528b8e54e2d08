"""Segment use cases: create, read one (the one reader of "a live segment"), list, update, delete."""

from __future__ import annotations

import re
import uuid
from typing import Any

from segments import cursors, errors
from segments.models import Actor, NewSegment, Segment, name_key
from segments.observability import MetricUnit, metrics
from segments.store import segments as store
from segments.timefmt import iso, now

SEGMENT_NOT_FOUND = "Segment not found"
SYSTEM_SEGMENT = "System segments can't be edited or deleted"
STALE_RETRIES = 3
_LISTING_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


def create_segment(actor: Actor, new: NewSegment) -> Segment:
    """Create an empty segment; the name must be unique in the org (enforced by the store)."""
    at = iso(now())
    segment = Segment(
        segment_id=str(uuid.uuid4()),
        org_id=actor.org_id,
        bucket=actor.bucket,
        current_size=0,
        created_at=at,
        updated_at=at,
        record_state="active",
        created_by_request=actor.request_id,
        **new.model_dump(),
    )
    store.put_with_name(segment.model_dump(), name_key(segment.name))
    metrics.add_metric(name="SegmentsCreated", unit=MetricUnit.Count, value=1)
    return segment


def segment_id_or_404(value: str) -> str:
    """A segment id in canonical form; anything that is not a UUID names no segment."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise errors.NotFound(SEGMENT_NOT_FOUND) from exc


def live_record(actor: Actor, segment_id: str) -> dict[str, Any]:
    """The actor's live segment record (storage fields included); a missing, malformed, deleted or
    foreign id is NotFound alike."""
    record = store.get_live(actor.org_id, segment_id_or_404(segment_id))
    if record is None:
        raise errors.NotFound(SEGMENT_NOT_FOUND)
    return record


def get_segment(actor: Actor, segment_id: str) -> dict[str, Any]:
    """The actor's live segment as callers see it."""
    return store.public(live_record(actor, segment_id))


def list_segments(actor: Actor, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """The org's live segments, newest first, `limit` a page, with an opaque cursor."""
    after = None
    if cursor is not None:
        after = cursors.decode(cursor, "segments", actor.org_id)
        if not isinstance(after, str) or not _LISTING_KEY.match(after):
            raise errors.ValidationFailed(cursors.INVALID)
    found, more = store.list_live(actor.org_id, after=after, limit=limit)
    return {
        "items": [segment for segment, _ in found],
        "next_cursor": cursors.encode("segments", actor.org_id, found[-1][1]) if more else None,
    }


def update_segment(actor: Actor, segment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename and/or change the description. A new name takes its lock in the same transaction
    that frees the old one, so uniqueness holds; a case-only rename keeps the lock it has."""
    if not changes:
        raise errors.ValidationFailed("Nothing to update: give 'name' and/or 'description'")
    for _ in range(STALE_RETRIES):
        record = _editable(actor, segment_id)
        sets: dict[str, Any] = {"updated_at": iso(now())}
        removes: list[str] = []
        new_key = None
        if "name" in changes:
            new_key = name_key(changes["name"])
            sets |= {"name": changes["name"], "name_key": new_key}
        if "description" in changes:
            if changes["description"] is None:
                removes.append("description")
            else:
                sets["description"] = changes["description"]
        try:
            store.update(actor.org_id, record["segment_id"], old_name_key=_name_key_of(record), sets=sets,
                         removes=removes, new_name_key=new_key)
        except store.Stale:
            continue  # renamed or deleted meanwhile: read it again
        metrics.add_metric(name="SegmentsUpdated", unit=MetricUnit.Count, value=1)
        return get_segment(actor, record["segment_id"])
    raise errors.Retryable("The segment is being changed by another request; retry later")


def delete_segment(actor: Actor, segment_id: str) -> dict[str, Any]:
    """Soft delete: record_state=deleted and the name freed in one transaction; members stay stored
    but are no longer served."""
    for _ in range(STALE_RETRIES):
        record = _editable(actor, segment_id)
        at = iso(now())
        try:
            store.delete(actor.org_id, record["segment_id"], name_key=_name_key_of(record), at=at)
        except store.Stale:
            continue
        metrics.add_metric(name="SegmentsDeleted", unit=MetricUnit.Count, value=1)
        return {"segment_id": record["segment_id"], "record_state": "deleted", "deleted_at": at}
    raise errors.Retryable("The segment is being changed by another request; retry later")


def _editable(actor: Actor, segment_id: str) -> dict[str, Any]:
    record = live_record(actor, segment_id)
    if record.get("system_segment"):
        raise errors.Forbidden(SYSTEM_SEGMENT)
    return record


def _name_key_of(record: dict[str, Any]) -> str:
    return str(record.get("name_key") or name_key(record["name"]))
