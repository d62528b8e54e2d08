"""Membership use cases: add and remove PIDs with exact counts, page members, memberships, history.

Writers of one segment's members take turns through a lease on the segment item (storage.py), so
`current_size`, `n_added` and `n_deleted` stay exact under concurrent callers without a
transaction per PID. Reads and writes go in batches: 10,000 new PIDs cost 100 BatchGetItem,
401 BatchWriteItem (400 of members, 1 of ledger) and two UpdateItem. docs/members.md has the why.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from segments import errors, storage
from segments.config import get_settings
from segments.models import Caller, is_valid_pid
from segments.observability import MetricUnit, logger, metrics
from segments.timefmt import iso, now

Change = Literal["added", "removed"]
REASON_API = "api"
SEGMENT_NOT_FOUND = "Segment not found"


@dataclass(frozen=True)
class MembersChanged:
    """What one add or remove did, as the caller sees it."""

    invalid_minerva_pids: list[str]
    n_changed: int  # n_added or n_deleted
    n_redundant: int
    new_current_size: int


@dataclass
class _Plan:
    writes: list[dict[str, Any]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # changed by this execution
    done_before: dict[str, str] = field(default_factory=dict)  # pid -> at of an earlier attempt
    redundant: int = 0
    delta: int = 0


# ------------------------------------------------------------------ cursors


def encode_cursor(kind: str, scope: str, position: Any) -> str:
    """An opaque cursor: urlsafe base64 of JSON, bound to what it pages (kind) and to whose (scope)."""
    raw = json.dumps({"k": kind, "s": scope, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, kind: str, scope: str) -> Any:
    """The position of a cursor made by encode_cursor for the same kind and scope; else 422."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise errors.ValidationFailed("Invalid cursor") from exc
    if not isinstance(data, dict) or data.get("k") != kind or data.get("s") != scope or "p" not in data:
        raise errors.ValidationFailed("Invalid cursor")
    return data["p"]


# ------------------------------------------------------------------ add / remove


def add_members(
    caller: Caller, segment_id: str, pids: Sequence[str], *, idempotency_key: str | None = None
) -> MembersChanged:
    """Add PIDs to a segment (§2.2). Invalid PIDs are reported; the rest are added exactly once."""
    unique, invalid = _screen(pids)
    if get_settings().pid_validation == "registry" and unique:
        known = storage.registered_people(caller.org_id, unique)
        invalid = [p for p in _dedupe(pids) if p not in known]  # format-invalid PIDs are never known
        unique = [p for p in unique if p in known]
    result = _apply(caller, segment_id, unique, invalid, "added", idempotency_key)
    metrics.add_metric(name="MembersAdded", unit=MetricUnit.Count, value=result.n_changed)
    return result


def remove_members(
    caller: Caller, segment_id: str, pids: Sequence[str], *, idempotency_key: str | None = None
) -> MembersChanged:
    """Remove PIDs from a segment (§2.3); only PIDs that were members count. History is kept."""
    unique, invalid = _screen(pids)
    result = _apply(caller, segment_id, unique, invalid, "removed", idempotency_key)
    metrics.add_metric(name="MembersRemoved", unit=MetricUnit.Count, value=result.n_changed)
    return result


def _dedupe(pids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(pids))


def _screen(pids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Refuse an oversized request before anything is read or written; split valid from invalid."""
    limit = get_settings().max_pids_per_request
    if len(pids) > limit:
        raise errors.PayloadTooLarge(
            f"Too many PIDs: {len(pids)} given, at most {limit} per request; nothing was changed"
        )
    unique = _dedupe(pids)
    return [p for p in unique if is_valid_pid(p)], [p for p in unique if not is_valid_pid(p)]


def _apply(
    caller: Caller,
    segment_id: str,
    pids: list[str],
    invalid: list[str],
    change: Change,
    idempotency_key: str | None,
) -> MembersChanged:
    org_id = caller.org_id
    token = f"{change}#{idempotency_key or caller.request_id}"
    owner = f"{caller.request_id}:{uuid.uuid4().hex[:8]}"
    dirty, pristine = _acquire(org_id, segment_id, owner)
    wrote = False
    try:
        base = storage.count_active_members(segment_id) if dirty else None
        at = iso(now())
        # A segment that never had a member item (the first fill after create) has nothing to read.
        existing = storage.get_members(segment_id, pids) if pids and not pristine else {}
        plan = _plan(caller, segment_id, pids, existing, change, token, at)
        to_log = _to_log(segment_id, pids, plan, change)
        ledger = storage.ledger_items(
            segment_id, change=change, pids=to_log, at=at, api_request_id=caller.request_id, reason=REASON_API
        )
        if plan.writes or ledger:
            wrote = True
            # Members first, then the ledger: a ledger entry never names a PID whose item was not written.
            storage.put_items(plan.writes)
            storage.put_items(ledger)
        size = storage.commit_lease(
            org_id, segment_id, owner=owner, delta=plan.delta, base=base,
            updated_at=at if plan.changed else None, wrote_members=bool(plan.writes),
        )
    except BaseException:
        _release(org_id, segment_id, owner, dirty=dirty or wrote)
        raise
    logger.info(
        "members changed",
        extra={"segment_id": segment_id, "change": change, "n_changed": len(plan.changed),
               "n_done_before": len(plan.done_before), "n_redundant": plan.redundant,
               "n_invalid": len(invalid), "recounted": dirty, "new_current_size": size},
    )
    return MembersChanged(
        invalid_minerva_pids=invalid,
        n_changed=len(plan.changed) + len(plan.done_before),
        n_redundant=plan.redundant,
        new_current_size=size,
    )


def _plan(
    caller: Caller,
    segment_id: str,
    pids: list[str],
    existing: dict[str, dict[str, Any]],
    change: Change,
    token: str,
    at: str,
) -> _Plan:
    """Classify each PID against its stored membership and build the member items to write."""
    plan = _Plan()
    base = {"org_id": caller.org_id, "segment_id": segment_id}
    last_op = f"{token}@{at}"
    for pid in pids:
        member = existing.get(pid)
        active = bool(member and member.get("active"))
        op, _, op_at = str((member or {}).get("last_op", "")).rpartition("@")
        mine = op == token
        if change == "added":
            if member is not None and active and mine:
                plan.done_before[pid] = op_at  # an earlier attempt of this very request
            elif active:
                plan.redundant += 1
                plan.writes.append(storage.member_item({**(member or {}), **base, "last_added_at": at}))
            else:
                plan.changed.append(pid)
                plan.delta += 1
                plan.writes.append(storage.member_item({
                    **(member or {}), **base, "minerva_pid": pid, "active": True,
                    "first_added_at": (member or {}).get("first_added_at") or at,
                    "last_added_at": at, "last_op": last_op,
                }))
        elif member is not None and active:
            plan.changed.append(pid)
            plan.delta -= 1
            plan.writes.append(storage.member_item({
                **member, **base, "active": False, "removed_at": at, "last_op": last_op,
            }))
        elif member is not None and mine:
            plan.done_before[pid] = op_at
    return plan


def _to_log(segment_id: str, pids: list[str], plan: _Plan, change: Change) -> list[str]:
    """PIDs for this request's ledger: its changes, less what an interrupted attempt already logged."""
    logged: set[str] = set()
    for earlier in sorted(set(plan.done_before.values())):
        logged |= storage.logged_pids(segment_id, earlier).get(change, set())
    changed = set(plan.changed)
    return [p for p in pids if p in changed or (p in plan.done_before and p not in logged)]


def _acquire(org_id: str, segment_id: str, owner: str) -> tuple[bool, bool]:
    """Wait (jittered backoff) for the segment's member-write lease: (dirty, pristine) as
    storage.acquire_lease returns them."""
    settings = get_settings()
    deadline = time.monotonic() + settings.lease_wait_seconds
    attempt = 0
    while True:
        now_ms = int(time.time() * 1000)
        lease = storage.acquire_lease(
            org_id, segment_id, owner=owner, now_ms=now_ms, until_ms=now_ms + settings.lease_seconds * 1000
        )
        if lease is not None:
            if attempt:
                metrics.add_metric(name="LeaseWaits", unit=MetricUnit.Count, value=attempt)
            return lease
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            metrics.add_metric(name="LeaseTimeouts", unit=MetricUnit.Count, value=1)
            raise errors.Retryable("Another update of this segment's members is in progress; retry later")
        attempt += 1
        cap = min(0.5, 0.02 * 2 ** min(attempt, 5))
        time.sleep(min(remaining, random.uniform(cap / 2, cap)))


def _release(org_id: str, segment_id: str, owner: str, *, dirty: bool) -> None:
    try:
        storage.release_lease(org_id, segment_id, owner=owner, dirty=dirty)
    except (ClientError, BotoCoreError, errors.DomainError):
        # The lease then expires by itself (lease_seconds) and size_dirty is still true.
        logger.exception("could not release the member-write lease", extra={"segment_id": segment_id})


# ------------------------------------------------------------------ reads


def segment_id_or_404(value: str) -> str:
    """A path's segment id in canonical form; anything that is not a UUID names no segment."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise errors.NotFound(SEGMENT_NOT_FOUND) from exc


def _live_segment(caller: Caller, segment_id: str) -> dict[str, Any]:
    segment = storage.get_segment(caller.org_id, segment_id)
    if segment is None:
        raise errors.NotFound(SEGMENT_NOT_FOUND)
    return segment


def list_members(caller: Caller, segment_id: str, *, page: int | None, cursor: str | None) -> dict[str, Any]:
    """One page of members in PID order (§2.4), by 1-based `page` or by opaque `cursor`."""
    if page is not None and cursor is not None:
        raise errors.ValidationFailed("Give either 'page' or 'cursor', not both")
    segment = _live_segment(caller, segment_id)
    size = get_settings().members_page_size
    total = int(segment.get("current_size", 0))
    if cursor is not None:
        after = decode_cursor(cursor, "members", segment_id)
        if not is_valid_pid(after):
            raise errors.ValidationFailed("Invalid cursor")
        found = storage.active_members(segment_id, after=after, want=size + 1)
        items, more = found[:size], len(found) > size
    else:
        page = page or 1
        skip = (page - 1) * size
        # Past the stored size there is nothing to read; otherwise read to the end of the page (+1 to know).
        found = storage.active_members(segment_id, after=None, want=skip + size + 1) if skip < total else []
        items, more = found[skip : skip + size], len(found) > skip + size
    return {
        "items": [{"minerva_pid": m["minerva_pid"], "first_added_at": m["first_added_at"]} for m in items],
        "total_count": total,
        "page": page,
        "list_continues": more,
        "next_cursor": encode_cursor("members", segment_id, items[-1]["minerva_pid"]) if more else None,
    }


def memberships(caller: Caller, pid: str) -> list[dict[str, Any]]:
    """The org's live segments that hold `pid` now, with first/last_added_at (sparse gsi2)."""
    rows = storage.memberships(caller.org_id, pid)
    live = storage.segments_by_id(caller.org_id, [r["segment_id"] for r in rows]) if rows else {}
    return [
        {
            "segment_id": r["segment_id"],
            "name": live[r["segment_id"]].get("name"),
            "first_added_at": r.get("first_added_at"),
            "last_added_at": r.get("last_added_at"),
        }
        for r in rows
        if r["segment_id"] in live
    ]


def history(caller: Caller, segment_id: str, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """The membership ledger oldest first, one entry per PID and change, `limit` a page."""
    _live_segment(caller, segment_id)
    start_sk, offset = None, 0
    if cursor is not None:
        position = decode_cursor(cursor, "history", segment_id)
        if (not isinstance(position, list) or len(position) != 2 or not isinstance(position[0], str)
                or not position[0].startswith("LOG#") or not isinstance(position[1], int) or position[1] < 0):
            raise errors.ValidationFailed("Invalid cursor")
        start_sk, offset = position
    entries: list[dict[str, Any]] = []
    next_cursor = None
    for item in storage.ledger_from(segment_id, start_sk):
        pids = item.get("pids") or []
        begin = offset if item["sk"] == start_sk else 0
        for i in range(begin, len(pids)):
            if len(entries) == limit:
                next_cursor = encode_cursor("history", segment_id, [item["sk"], i])
                break
            entries.append({
                "minerva_pid": pids[i], "change": item["change"], "at": item["at"],
                "api_request_id": item["api_request_id"], "reason": item.get("reason", REASON_API),
            })
        if next_cursor:
            break
    return {"items": entries, "next_cursor": next_cursor}
