"""The outbox: the table's stream records that become events.

- a feed entry INSERT (a signal reached a segment: on ingestion, or when its member joined)
  -> `Segment Signal Detected` {event_id, segment_id, org_id, minerva_pid, signal_type, signal};
- a ledger entry INSERT (written exactly once per stored membership change)
  -> `Segment Membership Changed` {event_id, segment_id, org_id, added, removed, reason,
  api_request_id, at}, PIDs chunked so every entry stays far below EventBridge's 256 KB.

A rewrite of an existing item is a MODIFY (or no record at all), never an INSERT, so a retried
request or a redelivered person event publishes nothing twice. `event_id` is derived from the
item's keys: a stream retry re-sends the same id, which consumers de-duplicate on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from segments.events.bus import Entry
from segments.store import keys
from segments.store.dynamo import from_item
from segments.usecases.signal_reads import render

SOURCE = "segments"
SIGNAL_DETECTED = "Segment Signal Detected"
MEMBERSHIP_CHANGED = "Segment Membership Changed"
PIDS_PER_EVENT = 1_000  # a 66-character PID: ~70 KB of detail


def event_id(prefix: str, pk: str, sk: str, n: int | None = None) -> str:
    digest = hashlib.sha256(f"{pk}\n{sk}".encode()).hexdigest()[:32]
    return f"{prefix}_{digest}" if n is None else f"{prefix}_{digest}_{n}"


def _keys(record: Mapping[str, Any]) -> tuple[str, str] | None:
    raw = (record.get("dynamodb") or {}).get("Keys") or {}
    pk, sk = (raw.get("pk") or {}).get("S"), (raw.get("sk") or {}).get("S")
    return (str(pk), str(sk)) if pk is not None and sk is not None else None


def is_feed_insert(record: Mapping[str, Any]) -> bool:
    k = _keys(record)
    return record.get("eventName") == "INSERT" and k is not None and keys.is_feed_key(*k)


def is_ledger_insert(record: Mapping[str, Any]) -> bool:
    k = _keys(record)
    return (
        record.get("eventName") == "INSERT"
        and k is not None
        and k[0].startswith(keys.SEGMENT)
        and keys.is_ledger_sk(k[1])
    )


def restored_segment(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(org_id, segment_id) of a segment item's MODIFY from deleted to active (a restore), else None.
    Not an event out: the feed function releases what the segment was held while deleted."""
    k = _keys(record)
    if record.get("eventName") != "MODIFY" or k is None or not keys.is_segment_key(*k):
        return None
    images = record.get("dynamodb") or {}
    old = ((images.get("OldImage") or {}).get("record_state") or {}).get("S")
    new = ((images.get("NewImage") or {}).get("record_state") or {}).get("S")
    if (old, new) != ("deleted", "active"):
        return None
    return keys.org_of_org_pk(k[0]), keys.segment_id_of(k[1])


def new_image(record: Mapping[str, Any]) -> dict[str, Any]:
    return from_item((record.get("dynamodb") or {}).get("NewImage") or {})


def entries_of(record: Mapping[str, Any]) -> list[Entry]:
    """The events of one stream record (none for records that are not outbox INSERTs)."""
    k = _keys(record)
    if k is None:
        return []
    if is_feed_insert(record):
        item = new_image(record)
        return [
            Entry(
                SOURCE,
                SIGNAL_DETECTED,
                {
                    "event_id": event_id("sig", *k),
                    "segment_id": item.get("segment_id"),
                    "org_id": item.get("org_id"),
                    "minerva_pid": item.get("minerva_pid"),
                    "signal_type": item.get("type"),
                    "signal": render(item),
                },
            )
        ]
    if is_ledger_insert(record):
        item = new_image(record)
        pids = [str(p) for p in item.get("pids") or []]
        change = item.get("change")
        out = []
        for n, start in enumerate(range(0, max(len(pids), 1), PIDS_PER_EVENT)):
            chunk = pids[start : start + PIDS_PER_EVENT]
            out.append(
                Entry(
                    SOURCE,
                    MEMBERSHIP_CHANGED,
                    {
                        "event_id": event_id("mem", *k, n),
                        "segment_id": item.get("segment_id"),
                        "org_id": item.get("org_id"),
                        "added": chunk if change == "added" else [],
                        "removed": chunk if change == "removed" else [],
                        "reason": item.get("reason"),
                        "api_request_id": item.get("api_request_id"),
                        "at": item.get("at"),
                    },
                )
            )
        return out
    return []
