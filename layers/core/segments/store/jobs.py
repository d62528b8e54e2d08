"""Bulk action jobs (SheepCRM `action/delete`): one item per job, `ORG#{org}` / `JOB#{job_id}`.

The job item is the job's whole state: what was asked, where it is (`chunk`, `cursor`), its counts
and its status. It moves forward only by a conditional write naming the chunk it starts from, so a
chunk delivered twice advances it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from segments.store import keys
from segments.store.dynamo import call, get, is_condition_failure, table, to_item, translate, update_if, values
from segments.store.segments import SegmentRecord

RUNNING = ("queued", "running")


def fresh(
    *, org_id: str, bucket: str, action: str, segment: SegmentRecord, request_id: str, at: str, **own: Any
) -> dict[str, Any]:
    """A new job (not yet stored): a fresh id, queued at chunk 0 with no cursor, counts or summaries
    yet, on `segment` as it is now; `own` holds what the action adds (its parameters, its counts)."""
    return {
        "job_id": str(uuid.uuid4()),
        "org_id": org_id,
        "bucket": bucket,
        "action": action,
        "segment_id": segment.segment_id,
        "definition_version": segment.definition_version,
        "requested_at": at,
        "updated_at": at,
        "request_id": request_id,
        "status": "queued",
        "chunk": 0,
        "cursor": None,
        "recent": [],
        "message": None,
        **own,
    }


def put_new(job: Mapping[str, Any]) -> None:
    """Store a new job (its id is fresh: the write refuses to replace one)."""
    put_new_item({**job, "pk": keys.org_pk(str(job["org_id"])), "sk": keys.job_sk(str(job["job_id"]))})


def put_new_item(item: Mapping[str, Any]) -> None:
    """Store a new job-shaped item (keys included) that must not replace one: exports too."""
    try:
        call("put_item", TableName=table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if is_condition_failure(exc):
            raise RuntimeError(f"job {item['sk']} exists already") from exc
        raise translate(exc) from exc


def get_job(org_id: str, job_id: str) -> dict[str, Any] | None:
    """The org's job (strongly consistent), without its keys; None when missing or another org's."""
    found = get(keys.job_key(org_id, job_id), consistent=True)
    if found is None:
        return None
    return {k: v for k, v in found.items() if k not in ("pk", "sk")}


def advance(org_id: str, job_id: str, *, chunk: int, sets: Mapping[str, Any]) -> bool:
    """SET `sets` on condition that the job is still at `chunk` and not finished. False when
    another delivery moved it first (or it was stopped)."""
    return advance_item(keys.job_key(org_id, job_id), chunk=chunk, sets=sets)


def advance_item(key: dict[str, Any], *, chunk: int, sets: Mapping[str, Any]) -> bool:
    """`advance` of any job-shaped item (`chunk`, `status` queued or running) at `key`: exports too."""
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    assignments = ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    vals = values(chunk=chunk, queued="queued", running="running", **{f"s{i}": v for i, v in enumerate(sets.values())})
    return update_if(
        TableName=table(),
        Key=key,
        UpdateExpression=f"SET {assignments}",
        ConditionExpression="#chunk = :chunk AND #status IN (:queued, :running)",
        ExpressionAttributeNames={**names, "#chunk": "chunk", "#status": "status"},
        ExpressionAttributeValues=vals,
    )
