"""The outbox: the table's stream records that become events.

- a feed entry INSERT (a signal reached a segment: on ingestion, or when its member joined)
  -> `Segment Signal Detected` {event_id, segment_id, org_id, minerva_pid, signal_type, signal};
- a ledger entry INSERT (written exactly once per stored membership change)
  -> `Segment Membership Changed` {event_id, segment_id, org_id, added, removed, reason,
  api_request_id, at}, PIDs chunked so every entry stays far below EventBridge's 256 KB;
- an export job's MODIFY from queued/running to succeeded/failed (one conditional write, once per
  job) -> `Segment Export Finished` {event_id, org_id, segment_id, export_id, format, rows, status,
  error, at}.

A rewrite of an existing item is a MODIFY (or no record at all), never an INSERT, so a retried
request or a redelivered person event publishes nothing twice. `event_id` is derived from the
item's keys: a stream retry re-sends the same id, which consumers de-duplicate on.
"""

from __future__ import annotations

import hashlib

from segments.adapters.dynamodb_stream import StreamChange
from segments.events.bus import Entry
from segments.models import render_signal
from segments.store import keys

SOURCE = "segments"
SIGNAL_DETECTED = "Segment Signal Detected"
MEMBERSHIP_CHANGED = "Segment Membership Changed"
EXPORT_FINISHED = "Segment Export Finished"
PIDS_PER_EVENT = 1_000  # a 66-character PID: ~70 KB of detail


def event_id(prefix: str, pk: str, sk: str, n: int | None = None) -> str:
    digest = hashlib.sha256(f"{pk}\n{sk}".encode()).hexdigest()[:32]
    return f"{prefix}_{digest}" if n is None else f"{prefix}_{digest}_{n}"


def is_feed_insert(change: StreamChange) -> bool:
    return change.inserted and change.keys is not None and keys.is_feed_key(*change.keys)


def is_ledger_insert(change: StreamChange) -> bool:
    return change.inserted and change.keys is not None and keys.is_ledger_key(*change.keys)


def is_export_finished(change: StreamChange) -> bool:
    if change.event_name != "MODIFY" or change.keys is None or not change.keys[1].startswith(keys.EXPORT):
        return False
    return change.old.get("status") in ("queued", "running") and change.new.get("status") in ("succeeded", "failed")


def entries_of(change: StreamChange) -> list[Entry]:
    """The events of one stream change (none for changes that are not outbox INSERTs)."""
    k = change.keys
    if k is None:
        return []
    if is_feed_insert(change):
        item = change.new
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
                    "signal": render_signal(item),
                },
            )
        ]
    if is_ledger_insert(change):
        item = change.new
        pids = [str(p) for p in item.get("pids") or []]
        direction = item.get("change")
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
                        "added": chunk if direction == "added" else [],
                        "removed": chunk if direction == "removed" else [],
                        "reason": item.get("reason"),
                        "api_request_id": item.get("api_request_id"),
                        "at": item.get("at"),
                    },
                )
            )
        return out
    if is_export_finished(change):
        job = change.new
        detail = {
            "event_id": event_id("exp", *k),
            "org_id": job.get("org_id"),
            "segment_id": job.get("segment_id"),
            "export_id": job.get("export_id"),
            "format": job.get("format"),
            "rows": job.get("rows"),
            "status": job.get("status"),
            "error": job.get("error"),
            "at": job.get("finished_at"),
        }
        return [Entry(SOURCE, EXPORT_FINISHED, detail)]
    return []
