"""Use cases. They take validated input and a Caller, and return plain data; no HTTP here."""

from __future__ import annotations

import re
import uuid
from typing import Any

from segments import errors, membership, storage
from segments.models import Caller, NewSegment, Segment, name_key
from segments.observability import MetricUnit, metrics
from segments.timefmt import iso, now


def create_segment(caller: Caller, new: NewSegment) -> Segment:
    """Create an empty segment; the name must be unique in the org (enforced by the store)."""
    at = iso(now())
    segment = Segment(
        segment_id=str(uuid.uuid4()),
        org_id=caller.org_id,
        bucket=caller.bucket,
        current_size=0,
        created_at=at,
        updated_at=at,
        record_state="active",
        created_by_request=caller.request_id,
        **new.model_dump(),
    )
    storage.put_segment_with_name(_storable(segment), name_key(segment.name))
    metrics.add_metric(name="SegmentsCreated", unit=MetricUnit.Count, value=1)
    return segment


def _storable(segment: Segment) -> dict[str, Any]:
    return segment.model_dump()


# ------------------------------------------------------------------ segment metadata (§2.6)

SEGMENT_NOT_FOUND = membership.SEGMENT_NOT_FOUND
SYSTEM_SEGMENT = "System segments can't be edited or deleted"
_STALE_RETRIES = 3
_LISTING_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
segment_id_or_404 = membership.segment_id_or_404


def get_segment(caller: Caller, segment_id: str) -> dict[str, Any]:
    """The caller's live segment; a missing, deleted or foreign one is NotFound alike."""
    segment = storage.get_segment(caller.org_id, segment_id_or_404(segment_id))
    if segment is None:
        raise errors.NotFound(SEGMENT_NOT_FOUND)
    return segment


def list_segments(caller: Caller, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """The org's live segments, newest first, `limit` a page, with an opaque cursor."""
    after = None
    if cursor is not None:
        after = membership.decode_cursor(cursor, "segments", caller.org_id)
        if not isinstance(after, str) or not _LISTING_KEY.match(after):
            raise errors.ValidationFailed("Invalid cursor")
    found, more = storage.list_segments(caller.org_id, after=after, limit=limit)
    return {
        "items": [segment for segment, _ in found],
        "next_cursor": membership.encode_cursor("segments", caller.org_id, found[-1][1]) if more else None,
    }


def update_segment(caller: Caller, segment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename and/or change the description. A new name takes its lock in the same transaction
    that frees the old one, so uniqueness holds; a case-only rename keeps the lock it has."""
    if not changes:
        raise errors.ValidationFailed("Nothing to update: give 'name' and/or 'description'")
    segment_id = segment_id_or_404(segment_id)
    for _ in range(_STALE_RETRIES):
        record = _live_record(caller, segment_id)
        at = iso(now())
        sets: dict[str, Any] = {"updated_at": at}
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
            storage.update_segment(
                caller.org_id, segment_id, old_name_key=_name_key_of(record), sets=sets, removes=removes,
                new_name_key=new_key,
            )
        except storage.Stale:
            continue  # renamed or deleted meanwhile: read it again
        metrics.add_metric(name="SegmentsUpdated", unit=MetricUnit.Count, value=1)
        return get_segment(caller, segment_id)
    raise errors.Retryable("The segment is being changed by another request; retry later")


def delete_segment(caller: Caller, segment_id: str) -> dict[str, Any]:
    """Soft delete: record_state=deleted and the name freed in one transaction; members stay stored
    but are no longer served."""
    segment_id = segment_id_or_404(segment_id)
    for _ in range(_STALE_RETRIES):
        record = _live_record(caller, segment_id)
        at = iso(now())
        try:
            storage.delete_segment(caller.org_id, segment_id, name_key=_name_key_of(record), at=at)
        except storage.Stale:
            continue
        metrics.add_metric(name="SegmentsDeleted", unit=MetricUnit.Count, value=1)
        return {"segment_id": segment_id, "record_state": "deleted", "deleted_at": at}
    raise errors.Retryable("The segment is being changed by another request; retry later")


def _live_record(caller: Caller, segment_id: str) -> dict[str, Any]:
    record = storage.get_segment_record(caller.org_id, segment_id)
    if record is None:
        raise errors.NotFound(SEGMENT_NOT_FOUND)
    if record.get("system_segment"):
        raise errors.Forbidden(SYSTEM_SEGMENT)
    return record


def _name_key_of(record: dict[str, Any]) -> str:
    return str(record.get("name_key") or name_key(record["name"]))
