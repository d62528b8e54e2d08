"""Members through the API (add, remove, a new segment) and what the store then holds."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from segments.store import dynamo, keys
from segments.store import ledger as ledger_store
from segments.store import members as members_store
from segments.store import segments as segment_store

if TYPE_CHECKING:
    from conftest import Api, ApiResponse, Org

ADD = "/v2/segments/members/add"
REMOVE = "/v2/segments/members/remove"
MEMBERS = "/v2/segments/members"
MEMBERSHIPS = "/v2/segments/memberships"


def new_segment(api: Api, org: Org, name: str | None = None) -> str:
    resp = api.post("/v2/segments/create", key=org.key, body={"name": name or f"seg {uuid.uuid4().hex[:8]}"})
    assert resp.status == 200, resp.text
    segment_id: str = resp.json["segment_id"]
    return segment_id


def add(api: Api, org: Org, segment_id: str, pids: list[Any], **kw: Any) -> ApiResponse:
    return api.post(ADD, key=org.key, body={"segment_id": segment_id, "minerva_pids": pids}, **kw)


def remove(api: Api, org: Org, segment_id: str, pids: list[Any], **kw: Any) -> ApiResponse:
    return api.post(REMOVE, key=org.key, body={"segment_id": segment_id, "minerva_pids": pids}, **kw)


def results(resp: ApiResponse) -> dict[str, Any]:
    assert resp.status == 200, resp.text
    found: dict[str, Any] = resp.json["results"]
    return found


def member(segment_id: str, pid: str) -> dict[str, Any] | None:
    return members_store.get_many(segment_id, [pid]).get(pid)


def active_count(segment_id: str) -> int:
    return members_store.count_active(segment_id)


def size(org: Org, segment_id: str) -> int:
    segment = segment_store.get_live(org.org_id, segment_id)
    assert segment is not None
    return int(segment["current_size"])


def ledger(segment_id: str) -> list[tuple[str, str]]:
    return [(p, item["change"]) for item in ledger_store.read_from(segment_id, None) for p in item["pids"]]


def segment_item(org: Org, segment_id: str) -> dict[str, Any]:
    """The stored segment record with its internals (lease, size_dirty)."""
    item = dynamo.call(
        "get_item", TableName=dynamo.table(), Key=keys.segment_key(org.org_id, segment_id), ConsistentRead=True
    )["Item"]
    return dynamo.from_item(item)
