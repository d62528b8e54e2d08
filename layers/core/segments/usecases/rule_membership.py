"""Real-time membership of rule segments (docs/api.md#keeping-membership-current), driven by the table's stream.

A person record written (a `profile` merged, a lifecycle fact set: INSERT or MODIFY of
`ORG#{org}#PERSON` / `PID#{pid}`):
  1. the changed top-level attributes: old image vs new image (every attribute of a new record);
  2. read 1: one BatchGetItem of the org's rule index for those fields — only the segments whose
     rules read a changed field, plus, for a new record (no old image), the segments filed under
     ANY_FIELD: those whose rules match a record lacking every field they read (no rules,
     `not_equal_to`, `none_of`, a raw `not`...). A segment reading none of the new record's fields
     sees it as lacking them all: its verdict is its verdict on an empty record, so a segment
     left out can only say "no", which a new record already is;
  3. read 2: one BatchGetItem of the PID's member items in those segments;
  4. evaluate each segment's compiled rules on the new image (hybrid: matches plus uris_include minus
     uris_exclude) and add or remove through the member-write path (`usecases.members`, actor
     reason "rule") only where membership changes, or where a retry finds this change's own write
     (written again, so the member-write path recounts a size the dead attempt left dirty). Counts
     stay exact (the lease), and the ledger entry those writes make is published as
     `Segment Membership Changed` by the publisher.

A segment item written (INSERT, or MODIFY whose definition — type, rules, uris, version — or
record_state changed): its rule index entries are rewritten (filed under the fields it reads now,
taken off the fields it no longer reads; a deleted segment leaves the index) and, when it needs
one, a rebuild is started (usecases/rebuild.py).

Records of one person (one partition) reach us in order, so two changes of one record are never
applied out of order. A stream retry repeats the same work: adds and removes are idempotent, and
the actor's id is derived from the stream record's id (a retry is recognised as the same change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segments import errors
from segments.adapters.dynamodb_stream import INSERT, MODIFY, REMOVE, StreamChange
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import keys, rule_index
from segments.usecases import members, rebuild, record_removal
from segments.usecases.rule_definitions import RECORD_STORAGE, Definition, person

_MISSING = object()


@dataclass
class Evaluated:
    """What one person record change did."""

    org_id: str
    pid: str
    changed_fields: int
    segments_evaluated: int
    added: list[str] = field(default_factory=list)  # segment ids
    removed: list[str] = field(default_factory=list)


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """Top-level attributes whose value differs between the two images (storage keys left out)."""
    names = (set(old) | set(new)) - RECORD_STORAGE
    return {n for n in names if old.get(n, _MISSING) != new.get(n, _MISSING)}


def written_by(member: Mapping[str, Any], wanted: bool, key: str) -> bool:
    """Was this member item last changed (added when `wanted`, else removed) by the member write
    whose idempotency key is `key`?"""
    op = str(member.get("last_op") or "").rpartition("@")[0]
    return op == f"{'added' if wanted else 'removed'}#{key}"


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic id (`req_` + 32 hex for request ids) from the parts."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"{prefix}{digest[:32]}"


def reevaluate(
    org_id: str, pid: str, old: Mapping[str, Any], new: Mapping[str, Any], *, change_id: str, created: bool = False
) -> Evaluated:
    """Re-evaluate the org's rule segments that read a changed field of this person record."""
    changed = changed_fields(old, new)
    fields = set(changed) | ({keys.ANY_FIELD} if created else set())
    found = rule_index.entries(org_id, fields)  # read 1
    result = Evaluated(org_id=org_id, pid=pid, changed_fields=len(changed), segments_evaluated=0)
    if not found:
        return result
    stored = rule_index.memberships(pid, sorted(found))  # read 2
    record = person(new)
    actor = Actor(org_id=org_id, bucket="-", request_id=derived_id("req_", "rule", change_id), reason="rule")
    key = derived_id("rt_", change_id)
    for segment_id, entry in sorted(found.items()):
        definition = Definition.of_entry(org_id, segment_id, entry)
        wanted = definition.wants(pid, record)
        result.segments_evaluated += 1
        if wanted is None:
            continue
        member = stored.get(segment_id) or {}
        if bool(member.get("active")) == wanted and not written_by(member, wanted, key):
            continue
        # A membership this very change already wrote is written again: on a retry, the attempt that
        # died before its commit left the size dirty; the member-write path recounts it.
        write = members.add_members if wanted else members.remove_members
        try:
            write(actor, segment_id, [pid], idempotency_key=key)
        except errors.NotFound:
            continue  # deleted since it was indexed: its index entries are on their way out
        (result.added if wanted else result.removed).append(segment_id)
    metrics.add_metric(name="RuleSegmentsEvaluated", unit=MetricUnit.Count, value=result.segments_evaluated)
    if result.added or result.removed:
        metrics.add_metric(
            name="RuleMembershipChanges", unit=MetricUnit.Count, value=len(result.added) + len(result.removed)
        )
    logger.info(
        "person record re-evaluated",
        extra={
            "org_id": org_id,
            "minerva_pid": pid,
            "changed_fields": len(changed),
            "segments_evaluated": result.segments_evaluated,
            "added_to": len(result.added),
            "removed_from": len(result.removed),
        },
    )
    return result


@dataclass(frozen=True)
class Reindexed:
    segment_id: str
    filed: int  # fields it is filed under now
    unfiled: int  # fields it was taken off
    rebuild: bool  # a rebuild was started


def segment_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, change_id: str) -> Reindexed | None:
    """Keep the rule index and the rebuilds in step with a segment record; None when its
    definition did not change (a rename, a member write's lease, the rebuild's own progress)."""
    now = Definition.of_segment(new)
    before = Definition.of_segment(old) if old else None
    if before is not None and before.same_as(now):
        return None
    fields_now = now.fields() if now.indexed else frozenset()
    fields_before = before.fields() if before is not None and before.indexed else frozenset()
    for name in sorted(fields_now):
        rule_index.put_entry(now.org_id, name, now.segment_id, now.entry())
    for name in sorted(fields_before - fields_now):
        rule_index.remove_entry(now.org_id, name, now.segment_id, definition_version=now.version)
    started = False
    if now.needs_build:
        rebuild.start(now, run=derived_id("", "run", change_id)[:16])
        started = True
    logger.info(
        "rule segment definition changed",
        extra={
            "segment_id": now.segment_id,
            "org_id": now.org_id,
            "definition_version": now.version,
            "segment_type": now.segment_type,
            "live": now.live,
            "filed": len(fields_now),
            "unfiled": len(fields_before - fields_now),
            "rebuild": started,
        },
    )
    return Reindexed(now.segment_id, len(fields_now), len(fields_before - fields_now), started)


def apply(change: StreamChange) -> Evaluated | Reindexed | record_removal.Removed | None:
    """One stream change: a person record or a segment item written, or a person record deleted
    (usecases/record_removal.py); anything else is ignored. The stream adapter applies a batch's
    changes in order and stops at the first that fails."""
    if change.event_name == REMOVE:
        return record_removal.apply_remove(change)
    if change.event_name not in (INSERT, MODIFY) or change.keys is None:
        return None
    pk, sk = change.keys
    old, new = change.old, change.new
    if keys.is_person_key(pk, sk):
        return reevaluate(
            keys.org_of_people_pk(pk),
            keys.pid_of(sk),
            old,
            new,
            change_id=change.change_id,
            created=change.inserted or not change.has_old,
        )
    if keys.is_segment_key(pk, sk) and new.get("segment_id") and new.get("org_id"):
        return segment_changed(old or None, new, change_id=change.change_id)
    return None
