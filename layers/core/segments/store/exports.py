"""Export jobs: one item per job, `ORG#{org}` / `EXPORT#{export_id}` (export ids sort by time).

The item is the job's whole state: what was asked (segment, format, columns), where it is (`chunk`,
`cursor`, `rows`), the multipart upload it writes (`upload_id`), its status and, once finished, the
file's size or why it failed. It moves forward only through `jobs.advance_item`, a conditional write
naming the chunk it starts from, so a chunk delivered twice advances it once; the move to
`succeeded` or `failed` therefore happens once, and that MODIFY is what the publisher turns into
`Segment Export Finished`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from segments.store import keys
from segments.store.dynamo import (
    call,
    from_item,
    get,
    table,
    update_if,
    values,
)
from segments.store.jobs import advance_item, put_new_item

RUNNING = ("queued", "running")
FINISHED = ("succeeded", "failed")
LIST_MAX = 100


def new_export_id(at_ms: int | None = None) -> str:
    """A UUID whose first 48 bits are the time in milliseconds (UUIDv7's layout), the rest random."""
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def put_new(job: Mapping[str, Any]) -> None:
    """Store a new job (its id is fresh: the write refuses to replace one)."""
    put_new_item({**job, "pk": keys.org_pk(str(job["org_id"])), "sk": keys.export_sk(str(job["export_id"]))})


def get_job(org_id: str, export_id: str) -> dict[str, Any] | None:
    """The org's job (strongly consistent); None when missing or another org's."""
    found = get(keys.export_key(org_id, export_id), consistent=True)
    return _public(found) if found else None


def delete(org_id: str, export_id: str) -> None:
    call("delete_item", TableName=table(), Key=keys.export_key(org_id, export_id))


def advance(org_id: str, export_id: str, *, chunk: int, sets: Mapping[str, Any]) -> bool:
    """SET `sets` if the job is still at `chunk` and running; False when another delivery moved it first."""
    return advance_item(keys.export_key(org_id, export_id), chunk=chunk, sets=sets)


def set_upload(org_id: str, export_id: str, upload_id: str) -> bool:
    """Record the job's multipart upload unless it has one already (False: another attempt's won)."""
    return update_if(
        TableName=table(),
        Key=keys.export_key(org_id, export_id),
        UpdateExpression="SET upload_id = :u",
        ConditionExpression="attribute_exists(pk) AND attribute_not_exists(upload_id)",
        ExpressionAttributeValues=values(u=upload_id),
    )


def note_rows(org_id: str, export_id: str, *, chunk: int, rows: int) -> None:
    """Progress inside a chunk (an XLSX or PDF job is one chunk): the rows written so far, while running."""
    update_if(
        TableName=table(),
        Key=keys.export_key(org_id, export_id),
        UpdateExpression="SET #rows = :rows, #status = :running",
        ConditionExpression="#chunk = :chunk AND #status IN (:queued, :running)",
        ExpressionAttributeNames={"#rows": "rows", "#status": "status", "#chunk": "chunk"},
        ExpressionAttributeValues=values(rows=rows, running="running", queued="queued", chunk=chunk),
    )


def recent(org_id: str, *, segment_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The org's jobs, newest first, at most `limit` (of one segment when given)."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": values(pk=keys.org_pk(org_id), prefix=keys.EXPORT),
        "ScanIndexForward": False,
    }
    if segment_id is not None:
        request["FilterExpression"] = "segment_id = :seg"
        request["ExpressionAttributeValues"] |= values(seg=segment_id)
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        page = call("query", **request, Limit=LIST_MAX)
        found += [_public(from_item(i)) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        if not last:
            break
        request["ExclusiveStartKey"] = last
    return found[:limit]


def running_since(org_id: str, since_ms: int) -> int:
    """How many of the org's jobs created since `since_ms` are queued or running (a key range: the
    ids sort by time; one Query of the period's jobs, strongly consistent)."""
    total, h = 0, f"{since_ms:012x}"
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "FilterExpression": "#status IN (:queued, :running)",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": values(
            pk=keys.org_pk(org_id),
            lo=keys.export_sk(f"{h[:8]}-{h[8:12]}"),
            hi=keys.export_sk("~"),
            queued="queued",
            running="running",
        ),
        "Select": "COUNT",
        "ConsistentRead": True,
    }
    while True:
        page = call("query", **request)
        total += int(page.get("Count", 0))
        last = page.get("LastEvaluatedKey")
        if not last:
            return total
        request["ExclusiveStartKey"] = last
