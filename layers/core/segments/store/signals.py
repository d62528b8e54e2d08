"""Signal records: facts (global per person), markers, segments' feed entries, the cross-org
holders of a PID (gsi3), and the lifecycle and profile writes on person records.

What a fact holds is the use case's decision (usecases/ingest.py); this module stores and reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from segments.store import keys
from segments.store.dynamo import (
    BATCH_GET_MAX,
    BATCH_WRITE_MAX,
    Cancelled,
    batch_get,
    batch_write,
    call,
    from_item,
    in_parallel,
    query_pages,
    table,
    to_item,
    transact,
    update_if,
    values,
)

FEED_FIELDS = ("org_id", "segment_id", "minerva_pid", "type", "event_id", "first_observed_at", "data")
_deser = TypeDeserializer()


def exact(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item with its numbers kept as Decimal (facts are written again, into feed entries)."""
    return {k: _deser.deserialize(v) for k, v in item.items()}


# ------------------------------------------------------------------ facts and markers


class EventIdTaken(Exception):
    """The event id is already stored for another person or for other content."""


def put_fact(fact: Mapping[str, Any], *, digest: str) -> bool:
    """Store a fact ({type, minerva_pid, event_id, observed_at, data}), the person's marker and the
    event id's claim (its PID and `digest`, the content's) in one transaction; False when this fact
    is already stored (nothing new is written). EventIdTaken when the id is claimed by another PID
    or another content: the claim's condition decides it, so two consumers racing with colliding
    events cannot both win."""
    pid, event_id = fact["minerva_pid"], fact["event_id"]
    item = {**fact, **_raw_key(keys.fact_key(pid, event_id))}
    marker = {**_raw_key(keys.marker_key(pid)), "minerva_pid": pid}
    claim = {**_raw_key(keys.event_claim_key(event_id)), "minerva_pid": pid, "digest": digest}
    try:
        transact(
            {
                "claim": {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(claim),
                        "ConditionExpression": "attribute_not_exists(pk) OR (minerva_pid = :pid AND digest = :digest)",
                        "ExpressionAttributeValues": values(pid=pid, digest=digest),
                    }
                },
                "fact": {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                "marker": {"Put": {"TableName": table(), "Item": to_item(marker)}},
            }
        )
    except Cancelled as exc:
        if exc.failed("claim"):
            raise EventIdTaken(event_id) from None
        if exc.failed("fact"):
            return False
        raise
    return True


def get_fact(pid: str, event_id: str) -> dict[str, Any] | None:
    """A stored fact (strongly consistent), storage keys dropped."""
    item = call("get_item", TableName=table(), Key=keys.fact_key(pid, event_id), ConsistentRead=True).get("Item")
    return _strip(exact(item)) if item else None


def with_signals(pids: Sequence[str]) -> set[str]:
    """The PIDs among `pids` that have a signal: their markers, 100 a BatchGetItem (consistent)."""

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection="pk", consistent=True)

    parts = in_parallel(read, [keys.marker_key(p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    return {keys.pid_of_signals_pk(str(from_item(i)["pk"])) for part in parts for i in part}


def facts_of(pid: str) -> list[dict[str, Any]]:
    """Every signal fact of a person (Query on PID#{pid}, begins_with SIG#; consistent)."""
    found: list[dict[str, Any]] = []
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=values(pk=keys.person_signals_pk(pid), prefix=keys.SIG),
        ConsistentRead=True,
    ):
        found.extend(_strip(exact(i)) for i in page.get("Items", []))
    return found


# ------------------------------------------------------------------ who holds a PID (gsi3)


@dataclass(frozen=True)
class Holders:
    """Every org's active memberships of a PID, and every org's person record of it."""

    memberships: list[tuple[str, str]]  # (org_id, segment_id)
    person_orgs: list[str]


def holders(pid: str) -> Holders:
    """One Query on gsi3 (keys only), whatever the number of orgs and segments (pages past 1 MB
    are followed)."""
    memberships: list[tuple[str, str]] = []
    person_orgs: list[str] = []
    for page in query_pages(
        IndexName="gsi3",
        KeyConditionExpression="gsi3pk = :pk",
        ExpressionAttributeValues=values(pk=keys.holders_all_orgs_pk(pid)),
    ):
        for item in page.get("Items", []):
            parsed = keys.parse_gsi3_sk(str(item.get("gsi3sk", {}).get("S", "")))
            if parsed is None:
                continue
            kind, org_id, segment_id = parsed
            if kind == "member" and segment_id is not None:
                memberships.append((org_id, segment_id))
            elif kind == "person":
                person_orgs.append(org_id)
    return Holders(memberships=memberships, person_orgs=person_orgs)


# ------------------------------------------------------------------ feed entries


def feed_item(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A feed entry's stored item, from a dict with FEED_FIELDS."""
    key = keys.feed_key(entry["segment_id"], entry["type"], entry["first_observed_at"], entry["event_id"])
    return {**{f: entry[f] for f in FEED_FIELDS if entry.get(f) is not None}, **_raw_key(key)}


def put_feed(entries: Sequence[Mapping[str, Any]]) -> None:
    """Write feed entries (deterministic keys: a repeat rewrites the same items); all or it raises."""
    requests = [{"PutRequest": {"Item": to_item(feed_item(e))}} for e in entries]
    in_parallel(batch_write, requests, BATCH_WRITE_MAX)


def delete_feed(entries: Sequence[Mapping[str, Any]]) -> None:
    """Delete feed entries ({segment_id, type, first_observed_at, event_id}); missing ones are fine."""
    requests = [
        {"DeleteRequest": {"Key": keys.feed_key(e["segment_id"], e["type"], e["first_observed_at"], e["event_id"])}}
        for e in entries
    ]
    in_parallel(batch_write, requests, BATCH_WRITE_MAX)


def feed_page(
    segment_id: str, *, low: str, high: str, start_sk: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` feed entries of one type, newest first, with sk in [low, high], after `start_sk`
    (exclusive). Returns (entries with their `sk`, the sk to continue after or None at the end)."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": values(pk=keys.member_pk(segment_id), low=low, high=high),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_sk is not None:
        request["ExclusiveStartKey"] = keys.key(keys.member_pk(segment_id), start_sk)
    page = call("query", **request)
    entries = []
    for raw in page.get("Items", []):
        data = from_item(raw)
        data.pop("pk", None)
        entries.append(data)
    last = page.get("LastEvaluatedKey")
    return entries, (str(last["sk"]["S"]) if last else None)


def feed_bounds(signal_type: str, since: str | None, until: str | None) -> tuple[str, str]:
    """The sort-key range of a type's entries first observed in [since, until] (both optional)."""
    prefix = keys.feed_prefix(signal_type)
    low = f"{prefix}{since}" if since else prefix
    high = f"{prefix}{until}{keys.FEED_END}" if until else f"{prefix}~"
    return low, high


def active_members(segment_id: str, pids: Sequence[str], *, consistent: bool = False) -> set[str]:
    """The PIDs among `pids` that are active members (BatchGetItem; eventually consistent for the
    read path, where a removal shows within the index's usual lag)."""
    names = {"#sk": "sk", "#active": "active"}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection="#sk, #active", names=names, consistent=consistent)

    parts = in_parallel(read, [keys.member_key(segment_id, p) for p in dict.fromkeys(pids)], BATCH_GET_MAX)
    return {keys.pid_of(str(i["sk"]["S"])) for part in parts for i in part if i.get("active", {}).get("BOOL")}


def segment_states(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The record_state of each stored segment among (org_id, segment_id) pairs of any orgs
    (BatchGetItem of the segment items, eventually consistent); missing segments are left out."""
    names = {"#pk": "pk", "#sk": "sk", "#state": "record_state"}

    def read(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(chunk, projection="#pk, #sk, #state", names=names, consistent=False)

    wanted = list(dict.fromkeys(pairs))
    parts = in_parallel(read, [keys.segment_key(org, sid) for org, sid in wanted], BATCH_GET_MAX)
    state = {
        (str(i["pk"]["S"]), str(i["sk"]["S"])): str(i.get("record_state", {}).get("S", ""))
        for part in parts
        for i in part
    }
    found = {(org, sid): state.get((keys.org_pk(org), keys.segment_sk(sid))) for org, sid in wanted}
    return {pair: s for pair, s in found.items() if s is not None}


def live_segments(pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The live segments among (org_id, segment_id) pairs of any orgs."""
    return {pair for pair, state in segment_states(pairs).items() if state == "active"}


# ------------------------------------------------------------------ person records


def set_lifecycle_fact(
    org_id: str, pid: str, *, fact: str, sets: Mapping[str, Any], observed_at: str, event_id: str
) -> bool:
    """Set a lifecycle fact (`sets`; None values are left as stored) on an org's existing person
    record unless a newer one is stored.

    The record keeps `{fact}_observed_at` and `{fact}_event_id`; an event applies when it is newer
    (observed_at, then event id, so two events of one instant settle the same way in any order).
    False when the stored fact is newer or equal, or the record does not exist."""
    names = {"#obs": f"{fact}_observed_at", "#eid": f"{fact}_event_id"}
    assignments = ["#obs = :obs", "#eid = :eid"]
    vals: dict[str, Any] = {"obs": observed_at, "eid": event_id}
    for i, (name, value) in enumerate((n, v) for n, v in sets.items() if v is not None):
        names[f"#f{i}"] = name
        vals[f"v{i}"] = value
        assignments.append(f"#f{i} = :v{i}")
    expression = "SET " + ", ".join(assignments)
    return update_if(
        TableName=table(),
        Key=keys.person_key(org_id, pid),
        UpdateExpression=expression,
        ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#obs) OR #obs < :obs "
        "OR (#obs = :obs AND #eid < :eid))",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values(**vals),
    )


def merge_profile(org_id: str, pid: str, attributes: Mapping[str, Any], *, observed_at: str) -> bool:
    """Merge top-level attributes into an org's person record (created when missing, with its gsi3
    attributes), unless the record holds a newer profile (`profile_observed_at`). False when stale."""
    sets: dict[str, Any] = {
        "org_id": org_id,
        "minerva_pid": pid,
        "gsi3pk": keys.holders_all_orgs_pk(pid),
        "gsi3sk": keys.person_gsi3_sk(org_id),
        "profile_observed_at": observed_at,
        **attributes,
    }
    names = {f"#a{i}": name for i, name in enumerate(sets)}
    vals = {f"v{i}": value for i, value in enumerate(sets.values())}
    expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
    obs_name = next(n for n, v in names.items() if v == "profile_observed_at")
    obs_value = next(f":v{i}" for i, name in enumerate(sets) if name == "profile_observed_at")
    return update_if(
        TableName=table(),
        Key=keys.person_key(org_id, pid),
        UpdateExpression=expression,
        ConditionExpression=f"attribute_not_exists({obs_name}) OR {obs_name} <= {obs_value}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values(**vals),
    )


def profile_observed_at(org_id: str, pid: str) -> str | None:
    """The `profile_observed_at` an org's person record holds (one consistent GetItem, projected)."""
    item = call(
        "get_item",
        TableName=table(),
        Key=keys.person_key(org_id, pid),
        ProjectionExpression="#obs",
        ExpressionAttributeNames={"#obs": "profile_observed_at"},
        ConsistentRead=True,
    ).get("Item")
    stored = (item or {}).get("profile_observed_at", {}).get("S")
    return str(stored) if stored is not None else None


def person(org_id: str, pid: str) -> dict[str, Any] | None:
    """An org's person record (tests and tools)."""
    item = call("get_item", TableName=table(), Key=keys.person_key(org_id, pid), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


# ------------------------------------------------------------------ helpers


def _raw_key(key: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value["S"]) for name, value in key.items()}


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("pk", None)
    data.pop("sk", None)
    return data
