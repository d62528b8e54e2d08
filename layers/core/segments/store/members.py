"""Member records: one item per (segment, PID), kept after removal so a re-add restores its
first_added_at; gsi3 attributes only while active (every org's segments holding a PID).

A member item holds MEMBER_FIELDS besides its keys. The PID, segment and org are not stored again:
they are in the keys and are derived on read. Writers read these fields and write the item whole:
an attribute added to member items belongs in MEMBER_FIELDS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import (
    BATCH_GET_MAX,
    batch_get,
    from_item,
    in_parallel,
    limited,
    put_items,
    query_pages,
    values,
)

MEMBER_FIELDS = ("active", "first_added_at", "last_added_at", "removed_at", "last_op")


def member_item(member: dict[str, Any]) -> dict[str, Any]:
    """A member's stored item (from a dict with org_id, segment_id, minerva_pid and MEMBER_FIELDS);
    the gsi3 attributes exist only while it is active."""
    org_id, segment_id, pid = member["org_id"], member["segment_id"], member["minerva_pid"]
    item = {k: member[k] for k in MEMBER_FIELDS if member.get(k) is not None}
    item |= {"pk": keys.member_pk(segment_id), "sk": keys.pid_sk(pid)}
    if member.get("active"):
        item |= {"gsi3pk": keys.holders_all_orgs_pk(pid), "gsi3sk": keys.member_gsi3_sk(org_id, segment_id)}
    return item


def put(records: Sequence[dict[str, Any]]) -> None:
    """Write member records whole (BatchWriteItem, several calls at once); all are written or it raises."""
    put_items([member_item(r) for r in records])


def _member(item: dict[str, Any]) -> dict[str, Any]:
    data = from_item(item)
    data["minerva_pid"] = keys.pid_of(str(data.pop("sk")))
    return data


def get_many(segment_id: str, pids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored memberships (active or not) of these PIDs, by PID: ceil(n/100) strongly consistent
    BatchGetItem (the lease holder must see every write of the holders before it)."""
    names = {f"#m{i}": name for i, name in enumerate(("sk", *MEMBER_FIELDS))}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection=", ".join(names), names=names, consistent=True)

    parts = in_parallel(read, [keys.member_key(segment_id, pid) for pid in pids], BATCH_GET_MAX)
    members = (_member(i) for part in parts for i in part)
    return {m["minerva_pid"]: m for m in members}


def count_active(segment_id: str) -> int:
    """Exact count of active members (Select COUNT over every page, strongly consistent): the
    recount after a crash."""
    total = 0
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        FilterExpression="active = :yes",
        ExpressionAttributeValues=values(pk=keys.member_pk(segment_id), prefix=keys.PID, yes=True),
        Select="COUNT",
        ConsistentRead=True,
    ):
        total += int(page.get("Count", 0))
    return total


def active_page(segment_id: str, *, after: str | None, want: int) -> list[dict[str, Any]]:
    """Up to `want` active members in PID order, after PID `after` (exclusive).

    ExclusiveStartKey jumps straight to the position, so a deep page reads what the first does.
    """
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "FilterExpression": "active = :yes",
        "ProjectionExpression": "sk, first_added_at",
        "ExpressionAttributeValues": values(pk=keys.member_pk(segment_id), prefix=keys.PID, yes=True),
    }
    if after is not None:
        request["ExclusiveStartKey"] = keys.member_key(segment_id, after)
    return [_member(i) for i in limited(request, want)]


def holding(org_id: str, pid: str) -> list[dict[str, Any]]:
    """The org's current memberships of a PID (sparse gsi3, the org's MEMBER# prefix), in segment
    id order. Only the exact org is kept: an org whose id extends this one's with '#' shares the
    prefix, and is never another org's answer."""
    found: list[dict[str, Any]] = []
    for page in query_pages(
        IndexName="gsi3",
        KeyConditionExpression="gsi3pk = :pk AND begins_with(gsi3sk, :prefix)",
        ExpressionAttributeValues=values(pk=keys.holders_all_orgs_pk(pid), prefix=keys.org_members_gsi3_prefix(org_id)),
    ):
        for item in page.get("Items", []):
            data = from_item(item)
            parsed = keys.parse_gsi3_sk(str(data.get("gsi3sk", "")))
            if parsed is None or parsed[0] != "member" or parsed[1] != org_id or parsed[2] is None:
                continue
            found.append(
                {
                    "segment_id": parsed[2],
                    "minerva_pid": pid,
                    "first_added_at": data.get("first_added_at"),
                    "last_added_at": data.get("last_added_at"),
                }
            )
    return found
