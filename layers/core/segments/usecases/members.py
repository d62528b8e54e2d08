"""Member writes: add and remove PIDs with exact counts, by any actor (API, rule, event).

Writers of one segment's members take turns through a lease on the segment item, so
`current_size`, `n_added` and `n_deleted` stay exact under concurrent callers without a
transaction per PID. Reads and writes go in batches: 10,000 new PIDs cost 100 BatchGetItem,
401 BatchWriteItem (400 of members, 1 of ledger) and two UpdateItem. docs/members.md has the why.

Lease policy (store/lease.py performs the writes): a writer first takes a *clean* lease (the
size is exact); if only size_dirty stands in the way, the previous holder died mid-write, so it
takes the dirty lease and recounts before applying its change. size_dirty stays true from
acquisition to commit, and a failed writer that wrote anything leaves it true.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from segments import errors
from segments.config import get_settings
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import lease, ledger, members, people
from segments.timefmt import iso, now
from segments.usecases import planning
from segments.usecases.planning import Change
from segments.usecases.segments import SEGMENT_NOT_FOUND, member_types, members_refused, segment_id_or_404


@dataclass(frozen=True)
class MembersChanged:
    """What one add or remove did, as the caller sees it."""

    invalid_minerva_pids: list[str]
    n_changed: int  # n_added or n_deleted
    n_redundant: int
    new_current_size: int


@dataclass(frozen=True)
class _Lease:
    owner: str
    dirty: bool  # the previous holder died mid-write: recount
    pristine: bool  # no member item was ever written: every PID is new, nothing to read


def add_members(
    actor: Actor, segment_id: str, pids: Sequence[str], *, idempotency_key: str | None = None
) -> MembersChanged:
    """Add PIDs to a segment (docs/api.md#minerva-add-members); invalid PIDs are reported, the rest added once."""
    unique, invalid = _screen(pids)
    if get_settings().pid_validation == "registry" and unique:
        known = people.registered(actor.org_id, unique)
        invalid = [p for p in planning.dedupe(pids) if p not in known]  # format-invalid PIDs are never known
        unique = [p for p in unique if p in known]
    result = _apply(actor, segment_id, unique, invalid, "added", idempotency_key)
    metrics.add_metric(name="MembersAdded", unit=MetricUnit.Count, value=result.n_changed)
    return result


def remove_members(
    actor: Actor, segment_id: str, pids: Sequence[str], *, idempotency_key: str | None = None
) -> MembersChanged:
    """Remove PIDs from a segment (docs/api.md#minerva-remove-members); only members count; history is kept."""
    unique, invalid = _screen(pids)
    result = _apply(actor, segment_id, unique, invalid, "removed", idempotency_key)
    metrics.add_metric(name="MembersRemoved", unit=MetricUnit.Count, value=result.n_changed)
    return result


def _screen(pids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Refuse an oversized request before anything is read or written; split valid from invalid."""
    limit = get_settings().max_pids_per_request
    if len(pids) > limit:
        raise errors.PayloadTooLarge(
            f"Too many PIDs: {len(pids)} given, at most {limit} per request; nothing was changed"
        )
    return planning.screen(pids)


def _apply(
    actor: Actor, segment_id: str, pids: list[str], invalid: list[str], change: Change, idempotency_key: str | None
) -> MembersChanged:
    org_id, segment_id = actor.org_id, segment_id_or_404(segment_id)
    token = f"{change}#{idempotency_key or actor.request_id}"
    held = _acquire(org_id, segment_id, f"{actor.request_id}:{uuid.uuid4().hex[:8]}", member_types(actor))
    wrote = False
    try:
        base = members.count_active(segment_id) if held.dirty else None
        at = iso(now())
        # A segment that never had a member item (the first fill after create) has nothing to read.
        existing = members.get_many(segment_id, pids) if pids and not held.pristine else {}
        plan = planning.plan(
            org_id=org_id, segment_id=segment_id, pids=pids, existing=existing, change=change, token=token, at=at
        )
        logged: set[str] = set()
        for earlier in sorted(set(plan.done_before.values())):
            logged |= {p for e in ledger.written_at(segment_id, earlier) if e["change"] == change for p in e["pids"]}
        entries = planning.ledger_entries(
            change=change,
            pids=planning.to_log(pids, plan, logged),
            at=at,
            request_id=actor.request_id,
            reason=actor.reason,
        )
        if plan.writes or entries:
            wrote = True
            # Members first, then the ledger: a ledger entry never names a PID whose item was not written.
            members.put(plan.writes)
            ledger.put(segment_id, entries, org_id=org_id)
        size = _commit(
            org_id,
            segment_id,
            held,
            delta=plan.delta,
            base=base,
            updated_at=at if plan.changed else None,
            wrote_members=bool(plan.writes),
        )
    except BaseException:
        _release(org_id, segment_id, held.owner, dirty=held.dirty or wrote)
        raise
    logger.info(
        "members changed",
        extra={
            "segment_id": segment_id,
            "change": change,
            "reason": actor.reason,
            "n_changed": len(plan.changed),
            "n_done_before": len(plan.done_before),
            "n_redundant": plan.redundant,
            "n_invalid": len(invalid),
            "recounted": held.dirty,
            "new_current_size": size,
        },
    )
    return MembersChanged(
        invalid_minerva_pids=invalid,
        n_changed=len(plan.changed) + len(plan.done_before),
        n_redundant=plan.redundant,
        new_current_size=size,
    )


def _acquire(org_id: str, segment_id: str, owner: str, types: Sequence[str]) -> _Lease:
    """Wait (jittered backoff) for the segment's member-write lease: clean if possible, else dirty.
    A segment whose type is not in `types` is refused at once (its members are not written by hand)."""
    settings = get_settings()
    deadline = time.monotonic() + settings.lease_wait_seconds
    attempt = 0
    while True:
        now_ms = int(time.time() * 1000)
        until_ms = now_ms + settings.lease_seconds * 1000
        taken = lease.take(
            org_id, segment_id, owner=owner, now_ms=now_ms, until_ms=until_ms, clean_only=True, types=types
        )
        dirty = taken.outcome == "dirty"
        if dirty:
            taken = lease.take(
                org_id, segment_id, owner=owner, now_ms=now_ms, until_ms=until_ms, clean_only=False, types=types
            )
        if taken.outcome == "missing":
            raise errors.NotFound(SEGMENT_NOT_FOUND)
        if taken.outcome == "refused":
            raise members_refused(segment_id, taken.segment_type)
        if taken.outcome == "taken":
            if attempt:
                metrics.add_metric(name="LeaseWaits", unit=MetricUnit.Count, value=attempt)
            return _Lease(owner=owner, dirty=dirty, pristine=not dirty and not taken.members_written)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            metrics.add_metric(name="LeaseTimeouts", unit=MetricUnit.Count, value=1)
            raise errors.Retryable("Another update of this segment's members is in progress; retry later")
        attempt += 1
        cap = min(0.5, 0.02 * 2 ** min(attempt, 5))
        time.sleep(min(remaining, random.uniform(cap / 2, cap)))  # nosec B311  # jitter, not a secret


def _commit(
    org_id: str,
    segment_id: str,
    held: _Lease,
    *,
    delta: int,
    base: int | None,
    updated_at: str | None,
    wrote_members: bool,
) -> int:
    try:
        return lease.commit(
            org_id,
            segment_id,
            owner=held.owner,
            now_ms=int(time.time() * 1000),
            delta=delta,
            base=base,
            updated_at=updated_at,
            wrote_members=wrote_members,
        )
    except lease.Lost as exc:
        # Only a lease held past lease_seconds can be lost; size_dirty stays true for the next writer.
        raise errors.Retryable("The member update took too long; retry it") from exc


def _release(org_id: str, segment_id: str, owner: str, *, dirty: bool) -> None:
    try:
        lease.release(org_id, segment_id, owner=owner, dirty=dirty)
    except (ClientError, BotoCoreError, errors.DomainError):
        # The lease then expires by itself (lease_seconds) and size_dirty is still true.
        logger.exception("could not release the member-write lease", extra={"segment_id": segment_id})
