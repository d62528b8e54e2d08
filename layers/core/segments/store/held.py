"""Held feed entries: signals that reached a segment while it was deleted, kept apart (sk
`HELD#SIG#...`, never read as the feed, never published) until the segment is restored, when
they become feed entries (usecases/signal_feed.py). What a feed entry holds is store/signals.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import (
    BATCH_WRITE_MAX,
    Cancelled,
    batch_write,
    in_parallel,
    query_pages,
    table,
    to_item,
    transact,
    values,
)
from segments.store.signals import exact, feed_item


def hold(entry: Mapping[str, Any]) -> bool:
    """Keep a feed entry of a deleted segment, on condition that the segment is still deleted (one
    transaction: the check and the write). False when it is not deleted any more (restored
    meanwhile): the caller writes the entry to the feed instead."""
    item = {**feed_item(entry), **{name: value["S"] for name, value in _held_key(entry).items()}}
    try:
        transact(
            {
                "segment": {
                    "ConditionCheck": {
                        "TableName": table(),
                        "Key": keys.segment_key(str(entry["org_id"]), str(entry["segment_id"])),
                        "ConditionExpression": "record_state = :deleted",
                        "ExpressionAttributeValues": values(deleted="deleted"),
                    }
                },
                "held": {"Put": {"TableName": table(), "Item": to_item(item)}},
            }
        )
    except Cancelled as exc:
        if exc.failed("segment"):
            return False
        raise
    return True


def held_entries(segment_id: str) -> list[dict[str, Any]]:
    """Every held entry of a segment, as feed entries (consistent Query on the HELD# prefix)."""
    found: list[dict[str, Any]] = []
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=values(pk=keys.member_pk(segment_id), prefix=keys.HELD),
        ConsistentRead=True,
    ):
        for raw in page.get("Items", []):
            entry = exact(raw)
            entry.pop("pk", None)
            entry.pop("sk", None)
            found.append(entry)
    return found


def release(entries: Sequence[Mapping[str, Any]]) -> None:
    """Delete held entries (after their feed entries are written); missing ones are fine."""
    requests = [{"DeleteRequest": {"Key": _held_key(e)}} for e in entries]
    in_parallel(batch_write, requests, BATCH_WRITE_MAX)


def _held_key(entry: Mapping[str, Any]) -> dict[str, Any]:
    return keys.held_key(
        str(entry["segment_id"]), str(entry["type"]), str(entry["first_observed_at"]), str(entry["event_id"])
    )
