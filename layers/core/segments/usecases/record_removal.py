"""A person record deleted (a REMOVE of `ORG#{org}#PERSON` / `PID#{pid}` on the table's stream,
e.g. by a bulk delete): the person leaves the org's rule segments that no longer want them.

A record that is gone matches no rule, so every dynamic membership of the PID ends, and a hybrid
one unless the hybrid's uris_include holds the person (Definition.wants with no record). Which
segments hold the PID is read from the person index (gsi3, the org's `MEMBER#{org}#` prefix: one
Query), their definitions from the segment items (one BatchGetItem per 100); removals go through
the member-write path with reason `rule`, so counts stay exact and the ledger says why. Static
segments keep the PID (members added by hand are not the rules engine's to remove).

gsi3 is eventually consistent: a membership written within the index's lag before the delete
(typically well under a second) can be missed; the segment's next rebuild removes it (its members
pass drops members without a record).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from segments import errors
from segments.adapters.dynamodb_stream import StreamChange
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import keys
from segments.store import members as member_store
from segments.store import segments as segment_store
from segments.usecases import members
from segments.usecases.rule_definitions import RULE_TYPES, Definition


@dataclass
class Removed:
    """What one deleted person record did."""

    org_id: str
    pid: str
    held: int  # the org's segments holding the PID
    removed: list[str] = field(default_factory=list)  # segment ids


def _derived(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def person_removed(org_id: str, pid: str, *, change_id: str) -> Removed:
    """Take `pid` out of the org's rule segments that do not want it without a record."""
    held = [m["segment_id"] for m in member_store.holding(org_id, pid)]
    result = Removed(org_id=org_id, pid=pid, held=len(held))
    if not held:
        return result
    actor = Actor(org_id=org_id, bucket="-", request_id=_derived("req_", "rule", change_id), reason="rule")
    for segment_id, record in sorted(segment_store.live_by_id(org_id, held).items()):
        definition = Definition.of_segment(record)
        if definition.segment_type not in RULE_TYPES or definition.wants(pid, None) is not False:
            continue
        try:
            members.remove_members(actor, segment_id, [pid], idempotency_key=_derived("rt_", change_id))
        except errors.NotFound:
            continue  # deleted meanwhile
        result.removed.append(segment_id)
    if result.removed:
        metrics.add_metric(name="RuleMembershipChanges", unit=MetricUnit.Count, value=len(result.removed))
    logger.info(
        "person record deleted",
        extra={"org_id": org_id, "minerva_pid": pid, "held_by": result.held, "removed_from": len(result.removed)},
    )
    return result


def apply_remove(change: StreamChange) -> Removed | None:
    """A REMOVE stream change: a person record's is applied; anything else is ignored."""
    if change.keys is None or not keys.is_person_key(*change.keys):
        return None
    pk, sk = change.keys
    return person_removed(keys.org_of_people_pk(pk), keys.pid_of(sk), change_id=change.change_id)
