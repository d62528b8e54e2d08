"""Segment records and their name locks (one transaction keeps names unique per org)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
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
    query_pages,
    table,
    to_item,
    transact,
    translate,
    values,
)


class Stale(Exception):
    """The segment changed between our read and our conditional write; read again and retry."""


def _tuple(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class SegmentRecord:
    """A segment item as the layers above read it, built from the item in one place (`of_item`).

    Only the attributes named here are read: pk/sk, the gsi1 keys, the member-write lease's
    attributes, and anything else an item may hold are not, so nothing reaches a caller unless a
    field here carries it and a surface renders it. None: the item does not hold the attribute (a
    None is never stored). `name_key` is what the conditional writes compare; no surface renders it.
    """

    segment_id: str
    org_id: str
    name: str
    name_key: str | None = None
    bucket: str | None = None
    description: str | None = None
    source: str | None = None
    segment_type: str | None = None
    resource_type: str | None = None
    rules: tuple[dict[str, Any], ...] | None = None
    tags: tuple[str, ...] | None = None
    parent_segment: str | None = None
    uris_include: tuple[str, ...] | None = None
    uris_exclude: tuple[str, ...] | None = None
    view_context: tuple[str, ...] | None = None
    active: bool | None = None
    system_segment: bool | None = None
    mailchimp_sync: bool | None = None
    fieldset_id: str | None = None  # the fieldset whose fields a Mailchimp sync sends as merge fields
    current_size: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    record_state: str | None = None
    deleted_at: str | None = None
    created_by_request: str | None = None
    definition_version: int | None = None
    build_state: str | None = None
    build_progress: Any = None

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> SegmentRecord:
        """From a segment item as `from_item` gives it."""
        return cls(
            segment_id=str(item["segment_id"]),
            org_id=str(item["org_id"]),
            name=str(item["name"]),
            name_key=item.get("name_key"),
            bucket=item.get("bucket"),
            description=item.get("description"),
            source=item.get("source"),
            segment_type=item.get("segment_type"),
            resource_type=item.get("resource_type"),
            rules=_tuple(item.get("rules")),
            tags=_tuple(item.get("tags")),
            parent_segment=item.get("parent_segment"),
            uris_include=_tuple(item.get("uris_include")),
            uris_exclude=_tuple(item.get("uris_exclude")),
            view_context=_tuple(item.get("view_context")),
            active=item.get("active"),
            system_segment=item.get("system_segment"),
            mailchimp_sync=item.get("mailchimp_sync"),
            fieldset_id=item.get("fieldset_id"),
            current_size=_int(item.get("current_size")),
            created_at=item.get("created_at"),
            updated_at=item.get("updated_at"),
            record_state=item.get("record_state"),
            deleted_at=item.get("deleted_at"),
            created_by_request=item.get("created_by_request"),
            definition_version=_int(item.get("definition_version")),
            build_state=item.get("build_state"),
            build_progress=item.get("build_progress"),
        )

    @property
    def live(self) -> bool:
        return self.record_state == "active"

    # Read by field name too, as the item it came from reads: a field the item does not hold is
    # missing (KeyError, `in` is false, `get` gives the default); so is any name that is no field.

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None) if name in _FIELDS else None
        return default if value is None else value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


_FIELDS = frozenset(f.name for f in fields(SegmentRecord))


def segment_item(segment: Mapping[str, Any], name_key: str) -> dict[str, Any]:
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
    # ALL_OLD: a failed condition returns the lock that holds the name (whose segment it is).
    return {
        "Put": {
            "TableName": table(),
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _lock_delete(org_id: str, name_key: str, segment_id: str) -> dict[str, Any]:
    return {
        "Delete": {
            "TableName": table(),
            "Key": keys.name_lock_key(org_id, name_key),
            "ConditionExpression": "attribute_not_exists(pk) OR segment_id = :sid",
            "ExpressionAttributeValues": values(sid=segment_id),
        }
    }


def put_with_name(
    segment: Mapping[str, Any], name_key: str, checks: Mapping[str, dict[str, Any]] | None = None
) -> SegmentRecord:
    """Create a segment and its name lock in one transaction: both must not exist yet. Returns the
    segment as stored (as a read of it gives it).

    Raises NameTaken when the name lock exists (a live segment of this org has the name), Stale
    when one of the named `checks` (ConditionChecks, e.g. "the parent is live") failed.
    """
    org_id, segment_id = segment["org_id"], segment["segment_id"]
    item = to_item(segment_item(segment, name_key))
    try:
        transact(
            {
                "segment": {
                    "Put": {
                        "TableName": table(),
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                "name lock": _lock_put(org_id, name_key, segment_id, segment["created_at"]),
                **(checks or {}),
            },
            token=segment_id,
        )
    except Cancelled as exc:
        # The lock holding this very id: our own write, retried by the SDK after a lost response.
        ours = exc.failed("name lock") and exc.items.get("name lock", {}).get("segment_id") == segment_id
        if not ours and exc.failed("name lock"):
            raise errors.NameTaken(segment["name"]) from exc
        if not ours and any(exc.failed(name) for name in checks or {}):
            raise Stale() from exc
        if not ours:
            raise
    return SegmentRecord.of_item(from_item(item))


def live_check(org_id: str, segment_id: str) -> dict[str, Any]:
    """A transaction item: the segment is live (record_state active)."""
    return {
        "ConditionCheck": {
            "TableName": table(),
            "Key": keys.segment_key(org_id, segment_id),
            "ConditionExpression": "record_state = :active",
            "ExpressionAttributeValues": values(active="active"),
        }
    }


def parent_check(org_id: str, segment_id: str, parent: str | None, *, live: bool = False) -> dict[str, Any]:
    """A transaction item: the segment's parent_segment is still `parent` (and, with `live`, the
    segment is live), so a walk of a parent chain holds at commit time."""
    if parent is None:
        condition, vals = "attribute_not_exists(parent_segment)", {}
    else:
        condition, vals = "parent_segment = :parent", values(parent=parent)
    if live:
        condition = f"record_state = :active AND ({condition})"
        vals |= values(active="active")
    check: dict[str, Any] = {
        "TableName": table(),
        "Key": keys.segment_key(org_id, segment_id),
        "ConditionExpression": condition,
    }
    if vals:
        check["ExpressionAttributeValues"] = vals
    return {"ConditionCheck": check}


def get_live(org_id: str, segment_id: str, *, consistent: bool = True) -> SegmentRecord | None:
    """The org's live segment, or None when missing, deleted or foreign. The one reader of "a live
    segment"."""
    record = get_any(org_id, segment_id, consistent=consistent)
    return record if record is not None and record.live else None


def get_any(org_id: str, segment_id: str, *, consistent: bool = True) -> SegmentRecord | None:
    """The org's segment in any state (deleted included), or None: for following links (parent
    chains), for restoring, for a rebuild's chunk."""
    item = get(keys.segment_key(org_id, segment_id), consistent=consistent)
    return None if item is None else SegmentRecord.of_item(item)


def _live_query(org_id: str) -> dict[str, Any]:
    """The Query of the org's live segments on gsi1, newest first."""
    return {
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk",
        "FilterExpression": "record_state = :active",
        "ExpressionAttributeValues": values(pk=keys.segments_gsi_pk(org_id), active="active"),
        "ScanIndexForward": False,
    }


def live_by_id(org_id: str, segment_ids: Sequence[str]) -> dict[str, SegmentRecord]:
    """The org's live segments among `segment_ids` (BatchGetItem), by id."""
    found = batch_get([keys.segment_key(org_id, sid) for sid in dict.fromkeys(segment_ids)], consistent=False)
    live = (SegmentRecord.of_item(from_item(i)) for i in found)
    return {s.segment_id: s for s in live if s.live}


def list_live(org_id: str, *, after: str | None, limit: int) -> tuple[list[tuple[SegmentRecord, str]], bool]:
    """The org's live segments newest first (gsi1) after the gsi1sk `after`: ([(segment, gsi1sk)], more)."""
    request = _live_query(org_id)
    if after:
        request["ExclusiveStartKey"] = {
            "gsi1pk": {"S": keys.segments_gsi_pk(org_id)},
            "gsi1sk": {"S": after},
            **keys.segment_key(org_id, keys.segment_id_of_gsi_sk(after)),
        }
    found = list(limited(request, limit + 1))
    return [(SegmentRecord.of_item(from_item(i)), i["gsi1sk"]["S"]) for i in found[:limit]], len(found) > limit


def all_live(org_id: str) -> list[SegmentRecord]:
    """Every live segment of the org (gsi1, every page), newest first."""
    pages = query_pages(**_live_query(org_id))
    return [SegmentRecord.of_item(from_item(i)) for page in pages for i in page.get("Items", [])]


ANY_VERSION = -1  # _update_request: do not condition on definition_version


def _update_request(
    org_id: str,
    segment_id: str,
    *,
    name_key: str,
    sets: dict[str, Any],
    removes: Sequence[str],
    version: int | None = ANY_VERSION,
    state: str = "active",
    empty_at_ms: int | None = None,
) -> dict[str, Any]:
    """An UpdateItem of a segment conditional on what we read: its state, its name key, and (unless
    ANY_VERSION) its definition_version (None: a record written before versioning). `empty_at_ms`
    (now, epoch ms) also requires no members and no member writer (current_size 0, no live lease)."""
    names = {f"#s{i}": k for i, k in enumerate(sets)} | {f"#r{i}": k for i, k in enumerate(removes)}
    expression = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    if removes:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    condition = "record_state = :state AND name_key = :old_key"
    extra: dict[str, Any] = {}
    if version is None:
        condition += " AND attribute_not_exists(definition_version)"
    elif version != ANY_VERSION:
        condition += " AND definition_version = :version"
        extra["version"] = version
    if empty_at_ms is not None:
        condition += " AND (attribute_not_exists(current_size) OR current_size = :zero)"
        condition += " AND (attribute_not_exists(lease_owner) OR lease_until < :now)"
        extra |= {"zero": 0, "now": empty_at_ms}
    return {
        "TableName": table(),
        "Key": keys.segment_key(org_id, segment_id),
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values(
            state=state, old_key=name_key, **extra, **{f"s{i}": v for i, v in enumerate(sets.values())}
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
    version: int | None = ANY_VERSION,
    empty_at_ms: int | None = None,
    checks: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Change a live segment's fields; a new name key moves its name lock in the same transaction.

    The segment update is conditional on the name key (and, unless ANY_VERSION, the
    definition_version) we read (Stale otherwise); the old lock is deleted only if it is this
    segment's; the new lock must not exist (NameTaken otherwise). Named `checks` (ConditionChecks
    of other items, e.g. a parent chain) join the same transaction; one failing is Stale.
    """
    request = _update_request(
        org_id, segment_id, name_key=old_name_key, sets=sets, removes=removes, version=version, empty_at_ms=empty_at_ms
    )
    if checks:
        items: dict[str, dict[str, Any]] = {"segment": {"Update": request}}
        if new_name_key is not None and new_name_key != old_name_key:
            items["old name lock"] = _lock_delete(org_id, old_name_key, segment_id)
            items["new name lock"] = _lock_put(org_id, new_name_key, segment_id, sets.get("updated_at"))
        _transact_change({**items, **checks}, name=sets.get("name"))
        return
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


def restore(org_id: str, segment_id: str, *, name_key: str, sets: dict[str, Any], name: str) -> None:
    """Back to active: the deleted segment updated and its name lock taken again, in one
    transaction. NameTaken when another live segment has the name now; Stale when the segment is
    no longer deleted (or was renamed meanwhile)."""
    sets = {"record_state": "active", **sets}
    request = _update_request(
        org_id, segment_id, name_key=name_key, sets=sets, removes=("deleted_at",), state="deleted"
    )
    _transact_change(
        {
            "segment": {"Update": request},
            "new name lock": _lock_put(org_id, name_key, segment_id, sets.get("updated_at")),
        },
        name=name,
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
