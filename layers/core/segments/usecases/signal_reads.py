"""Read a segment's signals (docs/api.md#signals): newest first, by type, optionally since/until (on
first_observed_at), `limit` a page with an opaque cursor; only signals of current members.

Cost: one GetItem (the live segment), then per round one Query of the feed (Limit = what is
still wanted + 1) and one BatchGetItem of those entries' member items (non-consistent): a page
costs O(page), never O(segment size). Entries of members removed but not yet cleaned up by the
feed function are dropped here, which can take an extra round.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from segments import cursors, errors
from segments.models import Actor, render_signal
from segments.store import signals as store
from segments.timefmt import instant
from segments.usecases.segments import live_record

SignalType = Literal["death", "job_change", "relocation"]
MAX_ROUNDS = 20  # a page is cut short (with a cursor) rather than read through a long run of removed members
_FEED_SK = re.compile(
    r"^SIG#(death|job_change|relocation)#\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
)


def parse_time(value: str | None, name: str) -> str | None:
    """An ISO-8601 bound (a zone is required; a bare date means its midnight UTC) in storage form."""
    if value is None:
        return None
    try:
        return instant(value, bare_date=True)
    except ValueError as exc:
        raise errors.ValidationFailed(
            f"Invalid '{name}': {exc}, e.g. 2024-01-15T10:30:45.123456Z or 2024-01-15"
        ) from None


def list_signals(
    actor: Actor,
    segment_id: str,
    signal_type: SignalType,
    *,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
    cursor: str | None = None,
) -> dict[str, Any]:
    """{"results": [...], "next_cursor": str | None} for one type of a live segment of the actor's org."""
    low_at, high_at = parse_time(since, "since"), parse_time(until, "until")
    if low_at and high_at and low_at > high_at:
        raise errors.ValidationFailed("Invalid 'since': it is after 'until'")
    sid = live_record(actor, segment_id).segment_id
    low, high = store.feed_bounds(signal_type, low_at, high_at)
    scope = f"{actor.org_id}:{sid}:{low_at or ''}:{high_at or ''}"
    kind = f"signals:{signal_type}"
    start = None
    if cursor is not None:
        start = cursors.decode(cursor, kind, scope)
        if not isinstance(start, str) or not _FEED_SK.match(start) or not low <= start <= high:
            raise errors.ValidationFailed(cursors.INVALID)
    found: list[dict[str, Any]] = []
    position: str | None = None
    for _ in range(MAX_ROUNDS):
        entries, last = store.feed_page(sid, low=low, high=high, start_sk=start, limit=limit - len(found) + 1)
        active = store.active_members(sid, [e["minerva_pid"] for e in entries]) if entries else set()
        for entry in entries:
            if entry["minerva_pid"] not in active:
                continue
            if len(found) == limit:  # one more than the page: more remain after the last one served
                position = found[-1]["sk"]
                break
            found.append(entry)
        if position is not None or last is None:
            break
        start = last
    else:
        position = start  # cut short after a long run of removed members: go on from what was read
    next_cursor = cursors.encode(kind, scope, position) if position else None
    return {"results": [render_signal(e) for e in found], "next_cursor": next_cursor}
