"""Use cases. They take validated input and a Caller, and return plain data; no HTTP here."""

from __future__ import annotations

import uuid
from typing import Any

from segments import storage
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
