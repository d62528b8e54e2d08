"""What the chunked jobs share (bulk deletes, exports: one queue message per chunk, the job item
moved only by a conditional write naming its chunk): reading a job by the id a caller gives, and
where a delivered message stands against the chunk the job has recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from segments import errors

Place = Literal["run", "resend", "duplicate", "ahead"]


def job_by_id(read: Callable[[str], dict[str, Any] | None], job_id: str, not_found: str) -> dict[str, Any]:
    """`read(canonical id)`; NotFound(`not_found`) alike for a malformed, missing or another org's id."""
    try:
        canonical = str(uuid.UUID(job_id))
    except (ValueError, AttributeError, TypeError) as exc:
        raise errors.NotFound(not_found) from exc
    job = read(canonical)
    if job is None:
        raise errors.NotFound(not_found)
    return job


def place(recorded: int, chunk: int, receive_count: int) -> Place:
    """`run` the message's chunk (the job is at it); `resend` the next message (this chunk was
    recorded by a delivery that died before sending it: a redelivery); `duplicate` (a copy of a
    recorded chunk); `ahead` of the job (a stray message of a chain that moved on)."""
    if recorded > chunk:
        return "resend" if recorded == chunk + 1 and receive_count > 1 else "duplicate"
    return "ahead" if recorded < chunk else "run"
