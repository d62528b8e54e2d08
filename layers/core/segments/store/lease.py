"""The member-write lease on a segment item: lease_owner, lease_until (epoch ms), size_dirty.

This module only performs the conditional writes; when to take a clean or a dirty lease, and what
a dirty one means, is the use case's policy (usecases/members.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from segments.store import keys
from segments.store.dynamo import call_through_conflicts, from_item, is_condition_failure, table, translate, values

Outcome = Literal["taken", "held", "dirty", "missing", "refused"]


@dataclass(frozen=True)
class Take:
    # taken; held by a live writer; refused because size_dirty (clean only); no live segment;
    # refused because the segment's type is not one of `types`
    outcome: Outcome
    members_written: bool = True  # when taken: has any member item ever been written?
    segment_type: str | None = None  # when refused: the segment's type


class Lost(Exception):
    """The lease expired or passed to another writer before commit."""


def _update(org_id: str, segment_id: str, **request: Any) -> dict[str, Any]:
    """A conditional UpdateItem of the segment item (retried through transaction conflicts)."""
    return call_through_conflicts("update_item", TableName=table(), Key=keys.segment_key(org_id, segment_id), **request)


def take(
    org_id: str,
    segment_id: str,
    *,
    owner: str,
    now_ms: int,
    until_ms: int,
    clean_only: bool,
    types: Sequence[str] | None = None,
) -> Take:
    """Take the lease if it is free (or expired), setting size_dirty; with `clean_only`, only if
    size_dirty is false; with `types`, only if the segment is of one of them (a segment without a
    type is static). The outcome comes from the condition itself, not from ReturnValues."""
    condition = "record_state = :active AND (attribute_not_exists(lease_owner) OR lease_until < :now)"
    vals = values(active="active", now=now_ms, me=owner, until=until_ms, yes=True)
    if types is not None:
        kinds = {f"t{i}": t for i, t in enumerate(types)}
        if "static" in types:
            condition += " AND (attribute_not_exists(segment_type) OR segment_type IN ({}))"
        else:
            condition += " AND segment_type IN ({})"
        condition = condition.format(", ".join(f":{k}" for k in kinds))
        vals |= values(**kinds)
    if clean_only:
        condition += " AND (attribute_not_exists(size_dirty) OR size_dirty = :no)"
        vals |= values(no=False)
    try:
        taken = _update(
            org_id,
            segment_id,
            UpdateExpression="SET lease_owner = :me, lease_until = :until, size_dirty = :yes",
            ConditionExpression=condition,
            ExpressionAttributeValues=vals,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise translate(exc) from exc
        old = from_item(exc.response.get("Item") or {})
        if old.get("record_state") != "active":
            return Take("missing")
        if types is not None and old.get("segment_type", "static") not in types:
            return Take("refused", segment_type=old.get("segment_type"))
        if old.get("lease_owner") is not None and int(old.get("lease_until", 0)) >= now_ms:
            return Take("held")
        return Take("dirty")
    written = from_item(taken.get("Attributes") or {}).get("members_written", True)
    return Take("taken", members_written=written is not False)


def commit(
    org_id: str,
    segment_id: str,
    *,
    owner: str,
    now_ms: int,
    delta: int,
    base: int | None,
    updated_at: str | None,
    wrote_members: bool,
) -> int:
    """Apply the size change (to `base` when recounted), mark the size exact and release the
    lease; returns the new size. Only the holder of an unexpired lease commits (Lost otherwise)."""
    size = ":base + :delta" if base is not None else "if_not_exists(current_size, :zero) + :delta"
    expression = f"SET current_size = {size}, size_dirty = :no"
    vals = values(delta=delta, no=False, me=owner, now=now_ms)
    if wrote_members:
        expression += ", members_written = :yes"
        vals |= values(yes=True)
    vals |= values(base=base) if base is not None else values(zero=0)
    if updated_at:
        expression += ", updated_at = :at"
        vals |= values(at=updated_at)
    try:
        result = _update(
            org_id,
            segment_id,
            UpdateExpression=expression + " REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me AND lease_until >= :now",
            ExpressionAttributeValues=vals,
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if is_condition_failure(exc):
            raise Lost() from exc
        raise translate(exc) from exc
    return int(from_item(result["Attributes"])["current_size"])


def release(org_id: str, segment_id: str, *, owner: str, dirty: bool) -> None:
    """Give the lease back without committing; `dirty` leaves size_dirty set for the next holder."""
    try:
        _update(
            org_id,
            segment_id,
            UpdateExpression="SET size_dirty = :dirty REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me",
            ExpressionAttributeValues=values(dirty=dirty, me=owner),
        )
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise translate(exc) from exc
