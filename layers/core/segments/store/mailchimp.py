"""A segment's Mailchimp sync state: one item, `ORG#{org}` / `MAILCHIMP#{segment_id}`.

- `position`: the ledger sort key up to which every change is in Mailchimp (absent: none yet);
- `mailchimp_segment_id`: the audience's static segment (tag) the members go to;
- `pending_until` (epoch ms): a sync is scheduled; membership changes before then schedule none;
- `last_synced_at`, `last_sync` (counts), `last_error`: what the last run did.

What the fields mean is the use cases' (usecases/mailchimp_*.py); this module performs the
conditional writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segments.store import keys
from segments.store.dynamo import call, get, table, update_if, values


def get_state(org_id: str, segment_id: str) -> dict[str, Any]:
    """The segment's sync state (strongly consistent); {} before its first sync."""
    found = get(keys.mailchimp_sync_key(org_id, segment_id), consistent=True)
    return {k: v for k, v in (found or {}).items() if k not in ("pk", "sk")}


def mark_pending(org_id: str, segment_id: str, *, now_ms: int, until_ms: int) -> bool:
    """Set the "sync pending" marker unless one stands (not yet expired): True when this call set
    it, i.e. the caller schedules the sync."""
    return update_if(
        TableName=table(),
        Key=keys.mailchimp_sync_key(org_id, segment_id),
        UpdateExpression="SET #p = :until, org_id = :org, segment_id = :seg",
        ConditionExpression="attribute_not_exists(#p) OR #p < :now",
        ExpressionAttributeNames={"#p": "pending_until"},
        ExpressionAttributeValues=values(until=until_ms, now=now_ms, org=org_id, seg=segment_id),
    )


def clear_pending(org_id: str, segment_id: str) -> None:
    """Remove the marker: membership changes from now on schedule another sync."""
    call(
        "update_item",
        TableName=table(),
        Key=keys.mailchimp_sync_key(org_id, segment_id),
        UpdateExpression="REMOVE #p",
        ExpressionAttributeNames={"#p": "pending_until"},
    )


def save(org_id: str, segment_id: str, *, expected_position: str | None, sets: Mapping[str, Any]) -> bool:
    """SET `sets` on condition that `position` is still `expected_position` (no other run moved it
    meanwhile); False when another run did."""
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    assignments = ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    vals = {f"s{i}": v for i, v in enumerate(sets.values())}
    if expected_position is None:
        condition = "attribute_not_exists(#pos)"
    else:
        condition = "#pos = :expected"
        vals["expected"] = expected_position
    return update_if(
        TableName=table(),
        Key=keys.mailchimp_sync_key(org_id, segment_id),
        UpdateExpression=f"SET {assignments}, org_id = :org, segment_id = :seg",
        ConditionExpression=condition,
        ExpressionAttributeNames={**names, "#pos": "position"},
        ExpressionAttributeValues=values(org=org_id, seg=segment_id, **vals),
    )
