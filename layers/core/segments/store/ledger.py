"""Ledger records: a segment's membership changes, one item per request chunk of PIDs.
What an entry holds is the use case's decision (usecases/members.py); this module stores and reads it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import call, from_item, put_items, query_pages, table, values

ENTRY_FIELDS = ("change", "pids", "at", "api_request_id", "reason")


def put(segment_id: str, entries: Sequence[Mapping[str, Any]], *, org_id: str | None = None) -> None:
    """Write entries ({n, change, pids, at, api_request_id, reason}); `n` orders one request's chunks.
    `org_id` is stored too: the stream consumers (signal feed, events out) need the segment's org."""
    put_items(
        [
            {
                "pk": keys.member_pk(segment_id),
                "sk": keys.ledger_sk(e["at"], e["api_request_id"], e["n"]),
                "segment_id": segment_id,
                "org_id": org_id,
                **{f: e[f] for f in ENTRY_FIELDS},
            }
            for e in entries
        ]
    )


def written_at(segment_id: str, at: str) -> list[dict[str, Any]]:
    """The entries written at `at` (what an interrupted attempt of a request already logged)."""
    found: list[dict[str, Any]] = []
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=values(pk=keys.member_pk(segment_id), prefix=keys.ledger_prefix(at)),
        ConsistentRead=True,
    ):
        found.extend(from_item(i) for i in page.get("Items", []))
    return found


def read_from(
    segment_id: str, start_sk: str | None, *, page: int = 10, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """Entries oldest first, from the ledger sort key `start_sk` (inclusive); read lazily, `page` a call."""
    start = start_sk if start_sk is not None and keys.is_ledger_sk(start_sk) else keys.LOG
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
        "ExpressionAttributeValues": values(pk=keys.member_pk(segment_id), start=start, end=keys.LOG_END),
        "Limit": page,
        "ConsistentRead": consistent,
    }
    while True:
        answer = call("query", **request)
        for item in answer.get("Items", []):
            yield from_item(item)
        last = answer.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def is_position(sk: object) -> bool:
    """Can `sk` be a position in a ledger (a cursor's start)?"""
    return isinstance(sk, str) and keys.is_ledger_sk(sk)


def last_position(segment_id: str) -> str | None:
    """The newest entry's sort key (strongly consistent), None for an empty ledger."""
    page = call(
        "query",
        TableName=table(),
        KeyConditionExpression="pk = :pk AND sk BETWEEN :start AND :end",
        ExpressionAttributeValues=values(pk=keys.member_pk(segment_id), start=keys.LOG, end=keys.LOG_END),
        ProjectionExpression="sk",
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    items = page.get("Items", [])
    return str(from_item(items[0])["sk"]) if items else None
