"""Segment records and their name locks (one transaction keeps names unique per org)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from segments import errors
from segments.store import keys
from segments.store.dynamo import (
    Cancelled,
    batch_get,
    call_through_conflicts,
    from_item,
    get,
    is_condition_failure,
    limited,
    table,
    to_item,
    transact,
    translate,
    values,
)

# Attributes of a segment item that only storage and the member-write lease use.
STORAGE_ONLY = frozenset(
    {"pk", "sk", "gsi1pk", "gsi1sk", "name_key", "lease_owner", "lease_until", "size_dirty", "members_written"}
)


class Stale(Exception):
    """The segment changed between our read and our conditional write; read again and retry."""


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A segment record without what only storage uses."""
    return {k: v for k, v in record.items() if k not in STORAGE_ONLY}


def segment_item(segment: dict[str, Any], name_key: str) -> dict[str, Any]:
    org_id, segment_id = segment["org_id"], segment["segment_id"]
    return {
        **segment,
        "pk": keys.org_pk(org_id),
        "sk": keys.segment_sk(segment_id),
        "name_key": name_key,
        "gsi1pk": keys.segments_gsi_pk(org_id),
        "gsi1sk": keys.segments_gsi_sk(segment["created_at"], segment_id),
        # False until a member item is first written: a first fill then needs no reads at all.
        "members_written": False,
    }


def _lock_put(org_id: str, name_key: str, segment_id: str, at: str | None) -> dict[str, Any]:
    item = {"pk": keys.org_pk(org_id), "sk": keys.name_lock_sk(name_key), "segment_id": segment_id, "created_at": at}
    return {"Put": {"TableName": table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def _lock_delete(org_id: str, name_key: str, segment_id: str) -> dict[str, Any]:
    return {
        "Delete": {
            "TableName": table(),
            "Key": keys.name_lock_key(org_id, name_key),
            "ConditionExpression": "attribute_not_exists(pk) OR segment_id = :sid",
            "ExpressionAttributeValues": values(sid=segment_id),
        }
    }


def put_with_name(segment: dict[str, Any], name_key: str) -> None:
    """Create a segment and its name lock in one transaction: both must not exist yet.

    Raises NameTaken when the name lock exists (a live segment of this org has the name).
    """
    org_id, segment_id = segment["org_id"], segment["segment_id"]
    try:
        transact(
            {
                "segment": {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(segment_item(segment, name_key)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                "name lock": _lock_put(org_id, name_key, segment_id, segment["created_at"]),
            },
            token=segment_id,
        )
    except Cancelled as exc:
        if exc.failed("name lock"):
            raise errors.NameTaken(segment["name"]) from exc
        raise


def get_live(org_id: str, segment_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
    """The org's live segment record (with its name key), or None when missing, deleted or foreign.
    The one reader of "a live segment"."""
    record = get(keys.segment_key(org_id, segment_id), consistent=consistent)
    if record is None or record.get("record_state") != "active":
        return None
    return record


def live_by_id(org_id: str, segment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The org's live segments among `segment_ids` (BatchGetItem), by id, without storage fields."""
    found = batch_get([keys.segment_key(org_id, sid) for sid in dict.fromkeys(segment_ids)], consistent=False)
    live = (public(from_item(i)) for i in found)
    return {s["segment_id"]: s for s in live if s.get("record_state") == "active"}


def list_live(org_id: str, *, after: str | None, limit: int) -> tuple[list[tuple[dict[str, Any], str]], bool]:
    """The org's live segments newest first (gsi1) after the gsi1sk `after`: ([(segment, gsi1sk)], more)."""
    request: dict[str, Any] = {
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk",
        "FilterExpression": "record_state = :active",
        "ExpressionAttributeValues": values(pk=keys.segments_gsi_pk(org_id), active="active"),
        "ScanIndexForward": False,
    }
    if after:
        request["ExclusiveStartKey"] = {
            "gsi1pk": {"S": keys.segments_gsi_pk(org_id)},
            "gsi1sk": {"S": after},
            **keys.segment_key(org_id, keys.segment_id_of_gsi_sk(after)),
        }
    found = list(limited(request, limit + 1))
    return [(public(from_item(i)), i["gsi1sk"]["S"]) for i in found[:limit]], len(found) > limit


def _update_request(
    org_id: str, segment_id: str, *, name_key: str, sets: dict[str, Any], removes: Sequence[str]
) -> dict[str, Any]:
    names = {f"#s{i}": k for i, k in enumerate(sets)} | {f"#r{i}": k for i, k in enumerate(removes)}
    expression = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    if removes:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    return {
        "TableName": table(),
        "Key": keys.segment_key(org_id, segment_id),
        "UpdateExpression": expression,
        "ConditionExpression": "record_state = :active AND name_key = :old_key",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values(
            active="active", old_key=name_key, **{f"s{i}": v for i, v in enumerate(sets.values())}
        ),
    }


def update(
    org_id: str,
    segment_id: str,
    *,
    old_name_key: str,
    sets: dict[str, Any],
    removes: Sequence[str] = (),
    new_name_key: str | None = None,
) -> None:
    """Change a live segment's fields; a new name key moves its name lock in the same transaction.

    The segment update is conditional on the name key we read (Stale otherwise); the old lock is
    deleted only if it is this segment's; the new lock must not exist (NameTaken otherwise).
    """
    request = _update_request(org_id, segment_id, name_key=old_name_key, sets=sets, removes=removes)
    if new_name_key is None or new_name_key == old_name_key:
        try:
            call_through_conflicts("update_item", **request)
        except ClientError as exc:
            if is_condition_failure(exc):
                raise Stale() from exc
            raise translate(exc) from exc
        return
    _transact_change(
        {
            "segment": {"Update": request},
            "old name lock": _lock_delete(org_id, old_name_key, segment_id),
            "new name lock": _lock_put(org_id, new_name_key, segment_id, sets.get("updated_at")),
        },
        name=sets.get("name"),
    )


def delete(org_id: str, segment_id: str, *, name_key: str, at: str) -> None:
    """Soft delete: record_state=deleted and the name lock removed, in one transaction."""
    sets = {"record_state": "deleted", "deleted_at": at, "updated_at": at}
    _transact_change(
        {
            "segment": {"Update": _update_request(org_id, segment_id, name_key=name_key, sets=sets, removes=())},
            "old name lock": _lock_delete(org_id, name_key, segment_id),
        },
        name=None,
    )


def _transact_change(items: dict[str, dict[str, Any]], *, name: str | None) -> None:
    try:
        transact(items)
    except Cancelled as exc:
        if exc.failed("segment"):
            raise Stale() from exc
        if name is not None and exc.failed("new name lock"):
            raise errors.NameTaken(name) from exc
        raise Stale() from exc
