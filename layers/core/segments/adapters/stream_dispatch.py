"""The stream dispatcher: one reader of the table's stream for the concerns behind queues.

DynamoDB Streams advises at most two readers per shard. RuleMembershipFunction reads the stream
itself; StreamDispatcherFunction is the other reader, and forwards each change to the FIFO queue
(with its own DLQ) of every concern that wants it, so each concern keeps its own retries and
failures (docs/decisions.md: stream readers). A concern is a route: a queue (a setting) and which
changes it takes (what its filters on the stream took before; its use case checks again).

Each message is the stream record as Lambda delivered it (`adapters/stream_queue.py` reads it
back), in message group `keys.stream_group` (the segment) and deduplicated by the record's
eventID, so the dispatcher's own retries within SQS's 5-minute window add nothing. Calls hold up
to 10 messages, at most one per group, and each change goes in a later call than its group's
previous change: a partial failure cannot put a later change of a segment ahead of an earlier one.
After a failure no later call is made to that queue; the batch reports the first change not sent,
and the stream retries from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from segments import queues
from segments.adapters.dynamodb_stream import MODIFY, StreamChange
from segments.config import get_settings
from segments.store import keys


def _is_feed_or_ledger_insert(change: StreamChange) -> bool:
    return (
        change.inserted
        and change.keys is not None
        and (keys.is_feed_key(*change.keys) or keys.is_ledger_key(*change.keys))
    )


def _is_ledger_insert(change: StreamChange) -> bool:
    return change.inserted and change.keys is not None and keys.is_ledger_key(*change.keys)


def _is_export_job_change(change: StreamChange) -> bool:
    """An export job's MODIFY (the filter lets through only queued/running -> succeeded/failed; the
    outbox checks again)."""
    return change.event_name == MODIFY and change.keys is not None and change.keys[1].startswith(keys.EXPORT)


def _is_restore(change: StreamChange) -> bool:
    return (
        change.event_name == MODIFY
        and change.keys is not None
        and keys.is_segment_key(*change.keys)
        and change.old.get("record_state") == "deleted"
        and change.new.get("record_state") == "active"
    )


@dataclass(frozen=True)
class Route:
    concern: str
    wants: Callable[[StreamChange], bool]
    queue_url: Callable[[], str | None]


ROUTES = (
    # events out: feed-entry and ledger INSERTs, finished exports (PublisherFunction)
    Route(
        "publisher",
        lambda c: _is_feed_or_ledger_insert(c) or _is_export_job_change(c),
        lambda: get_settings().publisher_queue_url,
    ),
    # late joiners and removals (ledger INSERTs), restores (SignalFeedFunction)
    Route(
        "signal feed", lambda c: _is_ledger_insert(c) or _is_restore(c), lambda: get_settings().signal_feed_queue_url
    ),
)


def concerns_of(change: StreamChange) -> list[str]:
    """The concerns a change is forwarded to."""
    return [route.concern for route in ROUTES if route.wants(change)]


def _group(change: StreamChange) -> str:
    return keys.stream_group(*(change.keys or ("", "")))


def _calls(positions: Sequence[int], changes: Sequence[StreamChange]) -> list[list[int]]:
    """The positions packed into calls (sent in this order) of at most 10 messages and one message
    per group, each change in a later call than the change of its group before it: a segment's
    changes reach the queue in stream order, whatever a call's partial failure."""
    calls: list[list[int]] = []
    groups: list[set[str]] = []
    last: dict[str, int] = {}  # group -> the call holding its latest change
    for position in positions:
        group = _group(changes[position])
        at = last.get(group, -1) + 1
        while at < len(calls) and len(calls[at]) == queues.SEND_BATCH_MAX:
            at += 1
        if at == len(calls):
            calls.append([])
            groups.append(set())
        calls[at].append(position)
        groups[at].add(group)
        last[group] = at
    return calls


def _send(url: str, changes: Sequence[StreamChange], positions: Sequence[int]) -> int | None:
    """Send one concern's changes; the first position not sent (the failed ones and every one of
    the calls not made after a failure), or None."""
    calls = _calls(positions, changes)
    for n, call in enumerate(calls):
        bodies = [(str(p), json.dumps(dict(changes[p].record), separators=(",", ":"))) for p in call]
        fifo = {str(p): (_group(changes[p]), changes[p].change_id) for p in call}
        sent = queues.send_batch(url, bodies, fifo)
        if sent.failed:
            unsent = [int(i) for i in sent.failed] + [p for later in calls[n + 1 :] for p in later]
            return min(unsent)
    return None


def forward(changes: Sequence[StreamChange]) -> int | None:
    """Send each change to its concerns' queues; the position of the first change not sent to all
    of them (None when every one was). The stream resends from there; the queues drop what they
    already hold (deduplication by the record's eventID)."""
    first_unsent: int | None = None
    for route in ROUTES:
        positions = [p for p, change in enumerate(changes) if route.wants(change)]
        if not positions:
            continue
        url = route.queue_url()
        if not url:
            raise RuntimeError(f"no queue for the {route.concern} (its setting is not set)")
        unsent = _send(url, changes, positions)
        if unsent is not None:
            first_unsent = unsent if first_unsent is None else min(first_unsent, unsent)
    return first_unsent
