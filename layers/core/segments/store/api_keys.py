"""API key records: by hash (the authorizer's one GetItem) and by id (listing and revocation),
and bucket claims (a bucket belongs to one org)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segments import errors
from segments.store import keys
from segments.store.dynamo import Cancelled, call, from_item, get, query_pages, table, to_item, transact, values


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key item as the layers above read it, built in one place (`of_item`): only these
    attributes are read (not the item's keys). None: the item does not hold the attribute."""

    key_id: str
    key_hash: str
    org_id: str | None
    bucket: str | None
    status: str | None
    created_at: str | None
    label: str | None = None
    updated_at: str | None = None

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> ApiKeyRecord:
        return cls(
            key_id=str(item["key_id"]),
            key_hash=str(item["key_hash"]),
            org_id=item.get("org_id"),
            bucket=item.get("bucket"),
            status=item.get("status"),
            created_at=item.get("created_at"),
            label=item.get("label"),
            updated_at=item.get("updated_at"),
        )


def put(record: dict[str, Any]) -> None:
    """Write the hash-keyed and the id-keyed item together, and claim the bucket for the org (or
    find it already the org's). Raises Conflict when another org holds the bucket."""
    by_hash = {**record, "pk": keys.api_key_hash_pk(record["key_hash"]), "sk": keys.API_KEY_HASH_SK}
    by_id = {
        **record,
        "pk": keys.api_key_id_pk(record["key_id"]),
        "sk": keys.API_KEY_ID_SK,
        "gsi1pk": keys.api_keys_gsi_pk(record["org_id"]),
        "gsi1sk": f"{record['created_at']}#{record['key_id']}",
    }
    claim = {
        "pk": keys.bucket_pk(record["bucket"]),
        "sk": keys.BUCKET_SK,
        "org_id": record["org_id"],
        "created_at": record["created_at"],
    }
    new = "attribute_not_exists(pk)"
    try:
        transact(
            {
                "key by hash": {"Put": {"TableName": table(), "Item": to_item(by_hash), "ConditionExpression": new}},
                "key by id": {"Put": {"TableName": table(), "Item": to_item(by_id), "ConditionExpression": new}},
                "bucket": {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(claim),
                        "ConditionExpression": "attribute_not_exists(pk) OR org_id = :org",
                        "ExpressionAttributeValues": values(org=record["org_id"]),
                    }
                },
            }
        )
    except Cancelled as exc:
        if exc.failed("bucket"):
            raise errors.Conflict(f"Bucket {record['bucket']} belongs to another organisation") from exc
        raise


def by_hash(key_hash: str) -> ApiKeyRecord | None:
    item = get(keys.api_key_by_hash(key_hash), consistent=False)
    return None if item is None else ApiKeyRecord.of_item(item)


def by_id(key_id: str) -> ApiKeyRecord | None:
    item = get(keys.api_key_by_id(key_id), consistent=True)
    return None if item is None else ApiKeyRecord.of_item(item)


def set_status(key_id: str, key_hash: str, status: str, at: str) -> None:
    items = {
        name: {
            "Update": {
                "TableName": table(),
                "Key": key,
                "UpdateExpression": "SET #s = :s, updated_at = :at",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values(s=status, at=at),
            }
        }
        for name, key in (("key by hash", keys.api_key_by_hash(key_hash)), ("key by id", keys.api_key_by_id(key_id)))
    }
    try:
        transact(items)
    except Cancelled as exc:
        raise errors.NotFound(f"API key {key_id} not found") from exc


def list_for_org(org_id: str) -> list[ApiKeyRecord]:
    """The org's keys, oldest first."""
    found: list[ApiKeyRecord] = []
    for page in query_pages(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=values(pk=keys.api_keys_gsi_pk(org_id)),
    ):
        found.extend(ApiKeyRecord.of_item(from_item(i)) for i in page.get("Items", []))
    return found


def bucket_owner(bucket: str) -> str | None:
    """The org that holds a bucket, or None."""
    item = call("get_item", TableName=table(), Key=keys.bucket_key(bucket), ConsistentRead=True).get("Item")
    return str(from_item(item)["org_id"]) if item else None
