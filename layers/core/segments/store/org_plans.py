"""An org's usage plan and its API Gateway key: the org plan item, and the key's id copied onto
the org's segments keys (both items of each), which is where the authorizer reads it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from segments.store import api_keys, keys
from segments.store.dynamo import call_through_conflicts, get, is_condition_failure, table, translate, values


def get_plan(org_id: str) -> dict[str, Any] | None:
    """The org's plan item ({org_id, plan, gateway_key_id, updated_at}), or None."""
    return get(keys.org_plan_key(org_id), consistent=True)


def claim_gateway_key(org_id: str, gateway_key_id: str, at: str) -> str:
    """Store the org's API Gateway key id unless one is stored already; the stored id either way
    (of two concurrent claims, the first one written wins)."""
    try:
        call_through_conflicts(
            "update_item",
            TableName=table(),
            Key=keys.org_plan_key(org_id),
            UpdateExpression="SET org_id = :org, gateway_key_id = :gk, updated_at = :at",
            ConditionExpression="attribute_not_exists(gateway_key_id)",
            ExpressionAttributeValues=values(org=org_id, gk=gateway_key_id, at=at),
        )
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise translate(exc) from exc
        stored = get_plan(org_id)
        return str((stored or {})["gateway_key_id"])
    return gateway_key_id


def set_plan(org_id: str, plan: str, at: str) -> None:
    try:
        call_through_conflicts(
            "update_item",
            TableName=table(),
            Key=keys.org_plan_key(org_id),
            UpdateExpression="SET #plan = :plan, updated_at = :at",
            ConditionExpression="attribute_exists(gateway_key_id)",
            ExpressionAttributeNames={"#plan": "plan"},
            ExpressionAttributeValues=values(plan=plan, at=at),
        )
    except ClientError as exc:
        raise translate(exc) from exc


def name_gateway_key_on_keys(org_id: str, gateway_key_id: str) -> int:
    """Copy the org's API Gateway key id onto every one of its segments keys that lacks it (both
    items of a key); returns how many keys were updated."""
    updated = 0
    for record in api_keys.list_for_org(org_id):
        if record.gateway_key_id == gateway_key_id:
            continue
        for key in (keys.api_key_by_hash(record.key_hash), keys.api_key_by_id(record.key_id)):
            try:
                call_through_conflicts(
                    "update_item",
                    TableName=table(),
                    Key=key,
                    UpdateExpression="SET gateway_key_id = :gk",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues=values(gk=gateway_key_id),
                )
            except ClientError as exc:
                raise translate(exc) from exc
        updated += 1
    return updated
