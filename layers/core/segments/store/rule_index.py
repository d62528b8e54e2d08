"""The storage of rule segments: the org's rule index, a PID's memberships of several segments,
pages of the people registry, and a segment's build progress (the segment itself is read through
store/segments.py).

Rule index: item `ORG#{org}` / `RULEFIELD#{field}` per top-level person-record field read by a
live dynamic or hybrid segment; one attribute per such segment, named `s_{segment_id}`, holding
{segment_type, rules, definition_version, include, exclude} (include/exclude: the PIDs of a
hybrid's uris_include/uris_exclude). Attributes rather than a nested map, so that one segment's
entry is set or removed by its own UpdateItem without reading the item, and concurrent writers of
different segments never overwrite each other. Each write is conditional on the entry's
definition_version: a replayed, older definition never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import (
    BATCH_GET_MAX,
    batch_get,
    call,
    from_item,
    in_parallel,
    table,
    update_if,
    values,
)

ENTRY_PREFIX = "s_"


def entry_name(segment_id: str) -> str:
    return f"{ENTRY_PREFIX}{segment_id}"


def entries(org_id: str, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The index entries of the segments reading any of `fields`, by segment id: one strongly
    consistent BatchGetItem per 100 fields. A segment filed under several fields appears once
    (its newest definition)."""
    wanted = sorted(set(fields))
    if not wanted:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for raw in batch_get([keys.rule_field_key(org_id, f) for f in wanted], consistent=True):
        for name, value in from_item(raw).items():
            if not name.startswith(ENTRY_PREFIX):
                continue
            segment_id = name.removeprefix(ENTRY_PREFIX)
            held = found.get(segment_id)
            if held is None or int(value.get("definition_version", 1)) > int(held.get("definition_version", 1)):
                found[segment_id] = value
    return found


def put_entry(org_id: str, field: str, segment_id: str, entry: Mapping[str, Any]) -> bool:
    """File a segment's entry under `field` unless a newer definition is filed there. False when stale."""
    return _update(org_id, field, segment_id, "SET #e = :entry", int(entry["definition_version"]), entry=entry)


def remove_entry(org_id: str, field: str, segment_id: str, *, definition_version: int) -> bool:
    """Take a segment off `field` unless a newer definition of it is filed there."""
    return _update(org_id, field, segment_id, "REMOVE #e", definition_version)


def _update(org_id: str, field: str, segment_id: str, expression: str, version: int, **vals: Any) -> bool:
    return update_if(
        TableName=table(),
        Key=keys.rule_field_key(org_id, field),
        UpdateExpression=expression,
        ConditionExpression="attribute_not_exists(#e) OR #e.#v <= :version",
        ExpressionAttributeNames={"#e": entry_name(segment_id), "#v": "definition_version"},
        ExpressionAttributeValues=values(version=version, **vals),
    )


def memberships(pid: str, segment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A PID's stored memberships (active or not) of these segments, by segment id: one strongly
    consistent BatchGetItem per 100 segments (the member items' keys, `active` and `last_op`)."""
    found = _member_items([keys.member_key(sid, pid) for sid in dict.fromkeys(segment_ids)], "pk")
    return {keys.segment_id_of(str(item.pop("pk"))): item for item in found}


def members_of(segment_id: str, pids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored memberships (active, last_op) of these PIDs in one segment, by PID (consistent)."""
    found = _member_items([keys.member_key(segment_id, p) for p in dict.fromkeys(pids)], "sk")
    return {keys.pid_of(str(item.pop("sk"))): item for item in found}


def _member_items(member_keys: Sequence[dict[str, Any]], key_attr: str) -> list[dict[str, Any]]:
    """Member items' `key_attr`, `active` and `last_op`: one strongly consistent BatchGetItem per
    100 keys, run in parallel."""
    if not member_keys:
        return []
    names = {"#k": key_attr, "#a": "active", "#o": "last_op"}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection="#k, #a, #o", names=names, consistent=True)

    return [from_item(raw) for part in in_parallel(read, member_keys, BATCH_GET_MAX) for raw in part]


def people_page(org_id: str, *, after_pid: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` person records of the org in PID order after `after_pid` (strongly consistent
    Query): (records, the PID to continue after, or None at the end)."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(pk=keys.people_pk(org_id), prefix=keys.PID),
        "ConsistentRead": True,
        "Limit": limit,
    }
    if after_pid is not None:
        request["ExclusiveStartKey"] = keys.person_key(org_id, after_pid)
    page = call("query", **request)
    records = [from_item(i) for i in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return records, (keys.pid_of(str(last["sk"]["S"])) if last else None)


def records(org_id: str, pids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The person records of these PIDs in the org, by PID (strongly consistent BatchGetItem, one
    per 100 PIDs, run in parallel); a PID without a record is absent."""
    if not pids:
        return {}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, consistent=True)

    parts = in_parallel(read, [keys.person_key(org_id, p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    found = (from_item(i) for part in parts for i in part)
    return {keys.pid_of(str(r["sk"])): r for r in found}


def with_records(org_id: str, pids: Sequence[str]) -> set[str]:
    """The PIDs among `pids` that have a person record in the org (strongly consistent BatchGetItem)."""
    if not pids:
        return set()

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection="sk", consistent=True)

    parts = in_parallel(read, [keys.person_key(org_id, p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    return {keys.pid_of(str(i["sk"]["S"])) for part in parts for i in part}


def record_progress(
    org_id: str,
    segment_id: str,
    *,
    definition_version: int,
    run: str,
    chunk: int,
    progress: Mapping[str, Any],
    ready: bool,
) -> bool:
    """Move a rebuild from `chunk` to `progress["chunk"]`: SET build_progress (and build_state),
    on condition that the segment is live, still at `definition_version` (a missing one is 1) and
    this run's progress is still at `chunk` (chunk 0: no progress of this run yet). False when the
    condition fails: a newer definition, a deleted segment, or another delivery got there first."""
    names = {
        "#p": "build_progress",
        "#st": "build_state",
        "#v": "definition_version",
        "#rs": "record_state",
        "#run": "run",
        **({"#chunk": "chunk"} if chunk else {}),
    }
    version_ok = "(#v = :v OR attribute_not_exists(#v))" if definition_version == 1 else "#v = :v"
    mine = "(attribute_not_exists(#p) OR #p.#run <> :run)" if chunk == 0 else "(#p.#run = :run AND #p.#chunk = :chunk)"
    return update_if(
        TableName=table(),
        Key=keys.segment_key(org_id, segment_id),
        UpdateExpression="SET #p = :progress, #st = :state",
        ConditionExpression=f"#rs = :active AND {version_ok} AND {mine}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values(
            progress=dict(progress),
            state="ready" if ready else "building",
            active="active",
            v=definition_version,
            run=run,
            **({"chunk": chunk} if chunk else {}),
        ),
    )
