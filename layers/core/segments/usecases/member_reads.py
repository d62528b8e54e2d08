"""Member reads: a segment's members by page or cursor (docs/api.md#minerva-members), the segments holding a PID, and a
segment's membership ledger (docs/api.md#minerva-history)."""

from __future__ import annotations

from typing import Any

from segments import cursors, errors
from segments.config import get_settings
from segments.models import Actor, is_valid_pid
from segments.store import ledger, members
from segments.store import segments as segment_store
from segments.usecases.segments import live_record


def list_members(
    actor: Actor, segment_id: str, *, page: int | None, cursor: str | None, page_size: int | None = None
) -> dict[str, Any]:
    """One page of members in PID order (docs/api.md#minerva-members), by 1-based `page` or opaque `cursor`; `page_size`
    defaults to the settings' members_page_size."""
    if page is not None and cursor is not None:
        raise errors.ValidationFailed("Give either 'page' or 'cursor', not both")
    segment = live_record(actor, segment_id)
    segment_id = segment.segment_id
    size = page_size or get_settings().members_page_size
    total = segment.current_size or 0
    if cursor is not None:
        after = cursors.decode(cursor, "members", segment_id)
        if not is_valid_pid(after):
            raise errors.ValidationFailed(cursors.INVALID)
        found = members.active_page(segment_id, after=after, want=size + 1)
        items, more = found[:size], len(found) > size
    else:
        page = page or 1
        skip = (page - 1) * size
        # Past the stored size there is nothing to read; otherwise read to the end of the page (+1 to know).
        found = members.active_page(segment_id, after=None, want=skip + size + 1) if skip < total else []
        items, more = found[skip : skip + size], len(found) > skip + size
    return {
        "items": [{"minerva_pid": m["minerva_pid"], "first_added_at": m["first_added_at"]} for m in items],
        "total_count": total,
        "page": page,
        "list_continues": more,
        "next_cursor": cursors.encode("members", segment_id, items[-1]["minerva_pid"]) if more else None,
    }


def memberships(actor: Actor, pid: str) -> list[dict[str, Any]]:
    """The org's live segments that hold `pid` now, with first/last_added_at (sparse gsi3)."""
    rows = members.holding(actor.org_id, pid)
    live = segment_store.live_by_id(actor.org_id, [r["segment_id"] for r in rows]) if rows else {}
    return [
        {
            "segment_id": r["segment_id"],
            "name": live[r["segment_id"]].name,
            "first_added_at": r.get("first_added_at"),
            "last_added_at": r.get("last_added_at"),
        }
        for r in rows
        if r["segment_id"] in live
    ]


def history(actor: Actor, segment_id: str, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """The membership ledger oldest first, one entry per PID and change, `limit` a page."""
    segment_id = live_record(actor, segment_id).segment_id
    start_sk, offset = None, 0
    if cursor is not None:
        position = cursors.decode(cursor, "history", segment_id)
        if (
            not isinstance(position, list)
            or len(position) != 2
            or not ledger.is_position(position[0])
            or type(position[1]) is not int
            or not 0 <= position[1] < 1_000_000
        ):
            raise errors.ValidationFailed(cursors.INVALID)
        start_sk, offset = position
    entries: list[dict[str, Any]] = []
    next_cursor = None
    for item in ledger.read_from(segment_id, start_sk):
        pids = item.get("pids") or []
        begin = offset if item["sk"] == start_sk else 0
        for i in range(begin, len(pids)):
            if len(entries) == limit:
                next_cursor = cursors.encode("history", segment_id, [item["sk"], i])
                break
            entries.append(
                {
                    "minerva_pid": pids[i],
                    "change": item["change"],
                    "at": item["at"],
                    "api_request_id": item["api_request_id"],
                    "reason": item.get("reason", "api"),
                }
            )
        if next_cursor:
            break
    return {"items": entries, "next_cursor": next_cursor}
