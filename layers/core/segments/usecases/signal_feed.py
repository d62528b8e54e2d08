"""Keep a segment's signal feed in step with its members (docs/api.md#signals: every signal of a *current* member,
whenever that member joined).

Driven by the ledger: each ledger entry (written exactly once per stored change, in the
segment's partition, so the table's stream delivers one segment's entries in order) says which
PIDs were added to or removed from which segment. For the PIDs that have a signal (their markers,
100 a BatchGetItem) the facts are read (one Query per such PID) and their feed entries written
(added) or deleted (removed). Both are idempotent: a stream retry repeats them harmlessly.

A restore (the segment item's MODIFY from deleted to active) releases the signals held for the
segment while it was deleted (release_held).

Reads also drop entries of members who are no longer active (usecases/signal_reads.py), so the
window before this runs never serves a removed member.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segments.adapters.dynamodb_stream import MODIFY, StreamChange
from segments.observability import MetricUnit, logger, metrics
from segments.store import held, keys
from segments.store import segments as segments_store
from segments.store import signals as store
from segments.usecases.ingest import feed_entries


@dataclass(frozen=True)
class Reconciled:
    segment_id: str
    change: str
    pids_with_signals: int
    entries: int  # feed entries written or deleted


def apply_ledger_entry(entry: Mapping[str, Any]) -> Reconciled:
    """Add or drop the feed entries of the PIDs of one ledger entry ({segment_id, org_id, change, pids})."""
    segment_id, org_id, change = str(entry["segment_id"]), entry.get("org_id"), str(entry["change"])
    pids = [str(p) for p in entry.get("pids") or []]
    if not pids or change not in ("added", "removed"):
        return Reconciled(segment_id, change, 0, 0)
    holders = sorted(store.with_signals(pids))
    entries: list[dict[str, Any]] = []
    for pid in holders:
        for fact in store.facts_of(pid):
            entries.extend(feed_entries(fact, [(str(org_id or ""), segment_id)]))
    if change == "added":
        if org_id is None:
            logger.warning("ledger entry without org_id", extra={"segment_id": segment_id})
            for e in entries:
                e.pop("org_id")
        store.put_feed(entries)
    else:
        store.delete_feed(entries)
    if entries:
        metrics.add_metric(name="SignalFeedReconciled", unit=MetricUnit.Count, value=len(entries))
    logger.info(
        "signal feed reconciled",
        extra={
            "segment_id": segment_id,
            "change": change,
            "pids": len(pids),
            "pids_with_signals": len(holders),
            "entries": len(entries),
        },
    )
    return Reconciled(segment_id, change, len(holders), len(entries))


def release_held(org_id: str, segment_id: str) -> Reconciled:
    """A restored segment takes the signals held for it while deleted: those of its current
    members become feed entries (INSERTs: served, and published once), then the held entries go.
    A retry repeats both harmlessly (a rewritten feed entry is a MODIFY: published once only)."""
    record = segments_store.get_any(org_id, segment_id)
    if record is None or not record.live:  # deleted again meanwhile: hold on
        logger.info("held signals kept: the segment is not live", extra={"segment_id": segment_id})
        return Reconciled(segment_id, "restored", 0, 0)
    entries = held.held_entries(segment_id)
    current = store.active_members(segment_id, [e["minerva_pid"] for e in entries], consistent=True)
    fed = [e for e in entries if e["minerva_pid"] in current]
    store.put_feed(fed)
    held.release(entries)
    if fed:
        metrics.add_metric(name="SignalFeedReleased", unit=MetricUnit.Count, value=len(fed))
    logger.info(
        "held signals released",
        extra={"segment_id": segment_id, "held": len(entries), "entries": len(fed)},
    )
    return Reconciled(segment_id, "restored", len(current), len(fed))


def restored_segment(change: StreamChange) -> tuple[str, str] | None:
    """(org_id, segment_id) of a segment item's MODIFY from deleted to active (a restore), else None."""
    if change.event_name != MODIFY or change.keys is None or not keys.is_segment_key(*change.keys):
        return None
    if (change.old.get("record_state"), change.new.get("record_state")) != ("deleted", "active"):
        return None
    return keys.org_of_org_pk(change.keys[0]), keys.segment_id_of(change.keys[1])


def apply(change: StreamChange) -> Reconciled | None:
    """One stream change: a ledger INSERT reconciles the feed, a segment restore releases its held
    signals; anything else is ignored. The stream adapter applies a batch's changes in order and
    stops at the first that fails, so one segment's changes are never applied out of order."""
    restored = restored_segment(change)
    if restored is not None:
        return release_held(*restored)
    if change.inserted and change.keys is not None and keys.is_ledger_key(*change.keys):
        return apply_ledger_entry(change.new)
    return None
