"""The table read raw, with a client of its own and keys spelled as store/keys.py documents them:
a check of what the store wrote that does not go through the store's own reads."""

from __future__ import annotations

from typing import Any

import boto3

from conftest import REGION
from segments.store.dynamo import from_item

TABLE = "SegmentsTable"


def raw() -> Any:
    """A client of its own: no hook registered on the store's client sees its calls."""
    return boto3.client("dynamodb", region_name=REGION)


def segment_key(org_id: str, segment_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ORG#{org_id}"}, "sk": {"S": f"SEG#{segment_id}"}}


def raw_item(key: dict[str, Any]) -> dict[str, Any] | None:
    item = raw().get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def raw_segment(org_id: str, segment_id: str) -> dict[str, Any]:
    """The stored segment item, internals included (GetItem)."""
    item = raw_item(segment_key(org_id, segment_id))
    assert item is not None, f"no segment item {segment_id}"
    return item


def raw_size(org_id: str, segment_id: str) -> int:
    """current_size as stored (GetItem)."""
    return int(raw_segment(org_id, segment_id)["current_size"])


def raw_active_count(segment_id: str) -> int:
    """Active member items of a segment, counted by a Query of its partition."""
    pages = (
        raw()
        .get_paginator("query")
        .paginate(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :pid)",
            FilterExpression="active = :yes",
            Select="COUNT",
            ConsistentRead=True,
            ExpressionAttributeValues={
                ":pk": {"S": f"SEG#{segment_id}"},
                ":pid": {"S": "PID#"},
                ":yes": {"BOOL": True},
            },
        )
    )
    return sum(int(page["Count"]) for page in pages)


def raw_org_items(org_id: str, prefix: str) -> list[dict[str, Any]]:
    """The org partition's items whose sort key starts with `prefix` (SEG#, NAME#)."""
    items = raw().query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": f"ORG#{org_id}"}, ":p": {"S": prefix}},
    )["Items"]
    return [from_item(i) for i in items]
