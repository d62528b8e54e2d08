"""Fieldsets: named lists of fields per org (`ORG#{org}` / `FIELDSET#{uid}`), and the fields seen on
the org's person records (what a generated fieldset offers).

`get(org_id, fieldset_id)` is the one reader other features use (an export's columns, a sync's
merge fields): a typed `Fieldset` whose `.fields` are dotted paths into a person record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from segments.store import keys
from segments.store.dynamo import call, from_item, table, to_item, values
from segments.store.dynamo import get as get_item

PEOPLE_SCAN_CAP = 5_000  # person records read to find the fields of a generated fieldset
RESERVED = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "gsi3pk", "gsi3sk", "org_id"})


class Fieldset(BaseModel):
    fieldset_id: str
    org_id: str
    name: str
    description: str = ""
    fields: list[str]
    applicable_resources: list[str]
    created_at: str
    updated_at: str
    record_state: str = "active"


def get(org_id: str, fieldset_id: str) -> Fieldset | None:
    """The org's fieldset, or None (missing, deleted, or another org's)."""
    found = get_item(keys.fieldset_key(org_id, fieldset_id), consistent=True)
    if found is None or found.get("record_state") != "active":
        return None
    return Fieldset.model_validate(found)


def put_new(fieldset: Fieldset) -> None:
    item = {**fieldset.model_dump(), "pk": keys.org_pk(fieldset.org_id), "sk": keys.fieldset_sk(fieldset.fieldset_id)}
    call("put_item", TableName=table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def list_all(org_id: str) -> list[Fieldset]:
    """The org's live fieldsets, by uid."""
    out: list[Fieldset] = []
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(pk=keys.org_pk(org_id), prefix=keys.FIELDSET),
    }
    while True:
        page = call("query", **request)
        out += [
            Fieldset.model_validate(r) for r in map(from_item, page.get("Items", [])) if r["record_state"] == "active"
        ]
        if not page.get("LastEvaluatedKey"):
            return out
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def delete(org_id: str, fieldset_id: str) -> bool:
    """Delete the org's fieldset; False when there was none."""
    found = call(
        "delete_item", TableName=table(), Key=keys.fieldset_key(org_id, fieldset_id), ReturnValues="ALL_OLD"
    ).get("Attributes")
    return bool(found)


def paths(record: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted paths of a record's values (maps flattened; a list is one field)."""
    out: set[str] = set()
    for name, value in record.items():
        if not prefix and (name in RESERVED or name.endswith(("_observed_at", "_event_id"))):
            continue
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            out |= paths(value, f"{path}.")
        else:
            out.add(path)
    return out


def person_fields(org_id: str, *, cap: int = PEOPLE_SCAN_CAP) -> tuple[list[str], bool]:
    """Every field seen on the org's person records (sorted), reading at most `cap` records; and
    whether the cap left records unread."""
    seen: set[str] = set()
    read = 0
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": values(pk=keys.people_pk(org_id)),
    }
    while read < cap:
        page = call("query", **request, Limit=min(1_000, cap - read))
        for item in page.get("Items", []):
            seen |= paths(from_item(item))
        read += len(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return sorted(seen - {"minerva_pid"}), False
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(seen - {"minerva_pid"}), True
