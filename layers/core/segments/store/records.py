"""Reads of a segment's members with their person records, and deletion of person records: what
the SheepCRM lookup and the bulk delete need. Every read is bounded by its caller's limit.

Person records live in the org's people partition (`ORG#{org}#PERSON` / `PID#{pid}`), so a
delete here can reach no other org's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import BATCH_GET_MAX, batch_get, batch_write, call, from_item, in_parallel, table, values

_MEMBER_NAMES = {"#sk": "sk", "#l": "last_added_at", "#f": "first_added_at", "#o": "last_op"}


def _member(item: dict[str, Any]) -> dict[str, Any]:
    data = from_item(item)
    op, _, op_at = str(data.get("last_op") or "").rpartition("@")
    return {
        "minerva_pid": keys.pid_of(str(data["sk"])),
        "last_added_at": data.get("last_added_at"),
        "first_added_at": data.get("first_added_at"),
        # when it last became a member (its last add that changed something); None for an item
        # written before last_op was kept. A redundant add moves last_added_at, not this.
        "active_since": op_at if op.startswith("added#") and op_at else None,
    }


def members_page(
    segment_id: str, *, after: str | None, read: int, pid_prefix: str = ""
) -> tuple[list[dict[str, Any]], str | None, int]:
    """One Query of the segment's member items in PID order after PID `after`, evaluating at most
    `read` items (DynamoDB's Limit applies before the filter), of which the active ones are
    returned: (members {minerva_pid, first_added_at, last_added_at, active_since}, the PID to continue after or
    None at the end, the number of items evaluated). `pid_prefix` keeps the PIDs that start with
    it (a key condition: an index seek, not a filter)."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(#sk, :prefix)",
        "FilterExpression": "active = :yes",
        "ProjectionExpression": "#sk, #l, #f, #o",
        "ExpressionAttributeNames": _MEMBER_NAMES,
        "ExpressionAttributeValues": values(
            pk=keys.member_pk(segment_id), prefix=keys.member_prefix_sk(pid_prefix), yes=True
        ),
        "Limit": read,
    }
    if after is not None:
        request["ExclusiveStartKey"] = keys.member_key(segment_id, after)
    page = call("query", **request)
    last = page.get("LastEvaluatedKey")
    after_pid = keys.pid_of(str(last["sk"]["S"])) if last else None
    return [_member(i) for i in page.get("Items", [])], after_pid, int(page.get("ScannedCount", 0))


def person_records(org_id: str, pids: Sequence[str], *, consistent: bool) -> dict[str, dict[str, Any]]:
    """The org's person records of these PIDs, by PID (BatchGetItem, 100 keys a call, in parallel)."""
    if not pids:
        return {}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, consistent=consistent)

    parts = in_parallel(read, [keys.person_key(org_id, p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    found = (from_item(i) for part in parts for i in part)
    return {keys.pid_of(str(r["sk"])): r for r in found}


def person_attributes(org_id: str, pids: Sequence[str], attributes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The org's person records of these PIDs, by PID, holding only the top-level `attributes`
    (a ProjectionExpression: less to send and to parse; eventually consistent BatchGetItem, 100 keys
    a call, in parallel). A record holding none of them is still returned (with its key)."""
    if not pids:
        return {}
    names = {f"#a{i}": a for i, a in enumerate(dict.fromkeys(["sk", *attributes]))}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection=", ".join(names), names=names, consistent=False)

    parts = in_parallel(read, [keys.person_key(org_id, p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    found = (from_item(i) for part in parts for i in part)
    return {keys.pid_of(str(r.pop("sk"))): r for r in found}


def delete_people(org_id: str, pids: Sequence[str]) -> None:
    """Delete the org's person records of these PIDs (BatchWriteItem, 25 a call; a missing record
    is no error). Each delete reaches the table's stream as a REMOVE, which takes the person out
    of the org's rule segments (usecases/record_removal.py)."""
    batch_write([{"DeleteRequest": {"Key": keys.person_key(org_id, pid)}} for pid in dict.fromkeys(pids)])
