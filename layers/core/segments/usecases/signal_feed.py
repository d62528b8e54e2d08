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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segments.events import outbox
from segments.events.publish import sequence_number
from segments.observability import MetricUnit, logger, metrics
from segments.store import held
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
    if record is None or record.get("record_state") != "active":  # deleted again meanwhile: hold on
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


def reconcile_stream(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply the ledger INSERTs and segment restores of a stream batch, in order; the Lambda
    partial-batch response.

    The first record that fails is reported (its SequenceNumber) and nothing after it is applied:
    Lambda resumes from it, so one segment's changes are never applied out of order."""
    for record in records:
        restored = outbox.restored_segment(record)
        if restored is None and not outbox.is_ledger_insert(record):
            continue
        try:
            if restored is not None:
                release_held(*restored)
            else:
                apply_ledger_entry(outbox.new_image(record))
        except Exception:  # noqa: BLE001 - any failure is this record's: report it, Lambda resumes from it
            logger.exception(
                "signal feed reconciliation failed; the stream will retry",
                extra={"sequence_number": sequence_number(record)},
            )
            return {"batchItemFailures": [{"itemIdentifier": sequence_number(record)}]}
    return {"batchItemFailures": []}
