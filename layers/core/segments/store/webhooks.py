"""Webhook endpoints, their deliveries and attempts, and the org's events, in the webhooks table
(WEBHOOKS_TABLE_NAME; keys in store/keys.py). The table has no stream: deliveries write often, and
the segments table's stream readers need not see them.

An endpoint is created and deleted in one transaction with the org's endpoint count, so an org never
holds more than its limit, however many creates race.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segments import errors
from segments.config import get_settings
from segments.store import dynamo, keys


def table() -> str:
    return get_settings().webhooks_table_name


class LimitReached(Exception):
    pass


def _get(key: dict[str, Any], consistent: bool = True) -> dict[str, Any] | None:
    item = dynamo.call("get_item", TableName=table(), Key=key, ConsistentRead=consistent).get("Item")
    return dynamo.from_item(item) if item else None


# ------------------------------------------------------------------ endpoints


def create(endpoint: Mapping[str, Any], limit: int) -> None:
    """Store a new endpoint (its `org_id`, `webhook_id` and fields); LimitReached when the org holds `limit`."""
    org_id, webhook_id = endpoint["org_id"], endpoint["webhook_id"]
    item = {**keys.webhook_key(org_id, webhook_id), **dynamo.to_item(endpoint)}
    try:
        dynamo.transact(
            {
                "count": {
                    "Update": {
                        "TableName": table(),
                        "Key": keys.webhook_count_key(org_id),
                        "UpdateExpression": "ADD endpoints :one",
                        "ConditionExpression": "attribute_not_exists(endpoints) OR endpoints < :limit",
                        "ExpressionAttributeValues": dynamo.values(one=1, limit=limit),
                    }
                },
                "endpoint": {
                    "Put": {"TableName": table(), "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
                },
            },
            token=webhook_id,
        )
    except dynamo.Cancelled as exc:
        if exc.failed("count"):
            raise LimitReached from exc
        raise


def get(org_id: str, webhook_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
    return _get(keys.webhook_key(org_id, webhook_id), consistent)


def list_for_org(org_id: str) -> list[dict[str, Any]]:
    """Every endpoint of the org (at most its limit), oldest first."""
    found: list[dict[str, Any]] = []
    for page in dynamo.query_pages(
        TableName=table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.values(pk=keys.webhooks_pk(org_id), prefix=keys.WEBHOOK),
    ):
        found += [dynamo.from_item(i) for i in page.get("Items", [])]
    return sorted(found, key=lambda e: (e.get("created_at", ""), e.get("webhook_id", "")))


def update(org_id: str, webhook_id: str, sets: Mapping[str, Any], removes: Sequence[str] = ()) -> dict[str, Any]:
    """SET `sets` (and REMOVE `removes`) on an existing endpoint; its new state. NotFound if it is gone."""
    names = {f"#s{i}": name for i, name in enumerate(sets)} | {f"#r{i}": name for i, name in enumerate(removes)}
    expression = ""
    if sets:
        expression += "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    if removes:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    request: dict[str, Any] = {
        "TableName": table(),
        "Key": keys.webhook_key(org_id, webhook_id),
        "UpdateExpression": expression.strip(),
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": names,
        "ReturnValues": "ALL_NEW",
    }
    if sets:
        request["ExpressionAttributeValues"] = dynamo.values(**{f"s{i}": v for i, v in enumerate(sets.values())})
    try:
        answer = dynamo.call_through_conflicts("update_item", **request)
    except ClientError as exc:
        if dynamo.is_condition_failure(exc):
            raise errors.NotFound("Webhook not found") from exc
        raise dynamo.translate(exc) from exc
    return dynamo.from_item(answer["Attributes"])


def update_if(
    org_id: str,
    webhook_id: str,
    expression: str,
    condition: str = "",
    *,
    names: dict[str, str] | None = None,
    **vals: Any,
) -> bool:
    """A conditional update of an endpoint's delivery state; False when the condition failed (or it is gone)."""
    request: dict[str, Any] = {
        "TableName": table(),
        "Key": keys.webhook_key(org_id, webhook_id),
        "UpdateExpression": expression,
        "ConditionExpression": f"attribute_exists(pk) AND ({condition})" if condition else "attribute_exists(pk)",
    }
    if vals:
        request["ExpressionAttributeValues"] = dynamo.values(**vals)
    if names:
        request["ExpressionAttributeNames"] = names
    return dynamo.update_if(**request)


def mark_failing(org_id: str, webhook_id: str, at: str, paused_until: int | None) -> dict[str, Any] | None:
    """A failed attempt: `failing_since` set if it was not, one more consecutive failure, and (for
    an endpoint that did not answer) the pause; the endpoint's new state, None if it is gone."""
    expression = "SET failing_since = if_not_exists(failing_since, :at), last_failure_at = :at ADD failures :one"
    vals: dict[str, Any] = {"at": at, "one": 1}
    if paused_until is not None:
        expression = expression.replace(" ADD", ", paused_until = :until ADD")
        vals["until"] = paused_until
    try:
        answer = dynamo.call_through_conflicts(
            "update_item",
            TableName=table(),
            Key=keys.webhook_key(org_id, webhook_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=dynamo.values(**vals),
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if dynamo.is_condition_failure(exc):
            return None
        raise dynamo.translate(exc) from exc
    return dynamo.from_item(answer["Attributes"])


def delete(org_id: str, webhook_id: str) -> bool:
    """Delete the endpoint and count it out; False when it did not exist."""
    try:
        dynamo.transact(
            {
                "endpoint": {
                    "Delete": {
                        "TableName": table(),
                        "Key": keys.webhook_key(org_id, webhook_id),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                "count": {
                    "Update": {
                        "TableName": table(),
                        "Key": keys.webhook_count_key(org_id),
                        "UpdateExpression": "ADD endpoints :minus",
                        "ExpressionAttributeValues": dynamo.values(minus=-1),
                    }
                },
            }
        )
    except dynamo.Cancelled as exc:
        if exc.failed("endpoint"):
            return False
        raise
    return True


# ------------------------------------------------------------------ deliveries and attempts


def record_attempt(delivery: Mapping[str, Any], attempt: Mapping[str, Any] | None) -> None:
    """The delivery's state and (when one was made) its attempt, in one BatchWriteItem."""
    requests = [
        {
            "PutRequest": {
                "Item": {
                    **keys.delivery_key(delivery["webhook_id"], delivery["delivery_id"]),
                    **dynamo.to_item(delivery),
                }
            }
        }
    ]
    if attempt is not None:
        sk = keys.attempt_sk(attempt["at"], attempt["delivery_id"], attempt["attempt"])
        requests.append(
            {
                "PutRequest": {
                    "Item": {**keys.key(keys.attempts_pk(attempt["webhook_id"]), sk), **dynamo.to_item(attempt)}
                }
            }
        )
    dynamo.batch_write(requests, table_name=table())


def get_delivery(webhook_id: str, delivery_id: str) -> dict[str, Any] | None:
    return _get(keys.delivery_key(webhook_id, delivery_id))


def attempts(webhook_id: str, limit: int, after: Mapping[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
    """Attempts newest first, at most `limit`, after the sort key `after` names; and the last one's sk
    when more may follow."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": dynamo.values(pk=keys.attempts_pk(webhook_id)),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if after:
        request["ExclusiveStartKey"] = keys.key(keys.attempts_pk(webhook_id), after["sk"])
    page = dynamo.call("query", **request)
    items = [dynamo.from_item(i) for i in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return items, (last["sk"]["S"] if last else None)


# ------------------------------------------------------------------ the org's events (for replay)


def put_org_events(events: Sequence[Mapping[str, Any]]) -> None:
    """Each event as `{org_id, at, event_id, ...}` (JSON values: a fraction is stored as the Decimal
    of its JSON text); an event seen again overwrites itself."""
    requests = [
        {
            "PutRequest": {
                "Item": {
                    **keys.key(keys.org_events_pk(e["org_id"]), keys.org_event_sk(e["at"], e["event_id"])),
                    **dynamo.to_item(json.loads(json.dumps(e), parse_float=Decimal)),
                }
            }
        }
        for e in events
    ]
    dynamo.batch_write(requests, table_name=table())


def get_org_event(org_id: str, at: str, event_id: str) -> dict[str, Any] | None:
    return _get(keys.key(keys.org_events_pk(org_id), keys.org_event_sk(at, event_id)))


def org_events(org_id: str, since: str, until: str) -> Iterator[dict[str, Any]]:
    """The org's events stored with `since` <= at <= `until`, oldest first."""
    for page in dynamo.query_pages(
        TableName=table(),
        KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
        ExpressionAttributeValues=dynamo.values(
            pk=keys.org_events_pk(org_id), low=since, high=until + keys.ORG_EVENT_END
        ),
    ):
        for item in page.get("Items", []):
            yield dynamo.from_item(item)
