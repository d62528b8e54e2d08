"""Rebuild a segment's membership after its definition changed, in resumable chunks.

A rebuild is a chain of RebuildQueue messages, one chunk each (RebuildFunction, batch size 1):
{org_id, segment_id, definition_version, run, chunk, phase, cursor, counts}. Phases, in order:

- `includes` (hybrid, static): add uris_include (hybrid: minus uris_exclude);
- `people` (dynamic, hybrid): a page of REBUILD_CHUNK_SIZE person records of the org from
  `cursor` (the last PID of the previous page), each evaluated: matching non-members added,
  non-matching members removed;
- `members` (dynamic, hybrid): a page of the segment's active members from `cursor`; those
  without a person record (added before the segment was dynamic, or records never made) are
  removed unless a hybrid's uris_include holds them. The people phase saw every PID that has
  a record, so after this phase no member is left unjudged.

Each chunk, in order: read the segment (consistent) — a message of an older definition_version
or of a deleted segment is dropped, one of another run of the same version too; do its work
through the member-write path (actor reason "rule"); record the progress on the segment
(`build_progress`, conditional on the version, the run and the chunk number it started from);
send the next chunk's message; return (the queue deletes this one). The last chunk sets
`build_state` "ready" in that same conditional write.

A chunk that dies anywhere is delivered again and done again: add/remove are idempotent, and
each chunk's member writes carry an idempotency key of their own (run and chunk), so members a
dead attempt changed are counted once (`added`/`removed`). Progress moves only by the
conditional write, so `scanned` counts every record once. Died after recording its progress but
before sending the next message: the redelivered message (ApproximateReceiveCount > 1) finds its
chunk recorded and sends the next message from the recorded progress. A copy of a message whose
chunk is already recorded, delivered for the first time, is dropped: the chain never forks.

A chunk's verdicts are only as new as the records it read, and a live change of one of them may be
judged (and written, or found to change nothing) before the chunk writes: the records of the PIDs
a chunk is about to write are read again just before, and once more after its writes; a record
found changed is judged anew and written again, until a read after the writes finds every record
as judged (see `_converge`). Membership never waits for a later change to be right.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from segments import errors, queues
from segments.config import get_settings
from segments.models import Actor
from segments.observability import MetricUnit, logger, metrics
from segments.store import members as member_store
from segments.store import rule_index
from segments.store import segments as segment_store
from segments.usecases import members
from segments.usecases.rule_definitions import RULE_TYPES, Definition, person

Phase = Literal["includes", "people", "members", "done"]
COUNTS = ("scanned", "matched", "added", "removed")
VERIFY_ROUNDS = 5  # reads of a chunk's written records before it gives up (and is delivered again)


def chunk_size() -> int:
    return get_settings().rebuild_chunk_size


def queue_url() -> str:
    url = get_settings().rebuild_queue_url
    if not url:
        raise RuntimeError("REBUILD_QUEUE_URL is not set")
    return url


def first_phase(definition: Definition) -> Phase:
    if definition.segment_type == "static" or (definition.segment_type == "hybrid" and definition.include):
        return "includes"
    return "people"


def _after(phase: Phase, definition: Definition) -> Phase:
    if phase == "includes":
        return "people" if definition.segment_type in RULE_TYPES else "done"
    if phase == "people":
        return "members"
    return "done"


def first_message(definition: Definition, *, run: str) -> dict[str, Any]:
    return {
        "org_id": definition.org_id,
        "segment_id": definition.segment_id,
        "definition_version": definition.version,
        "run": run,
        "chunk": 0,
        "phase": first_phase(definition),
        "cursor": None,
        "counts": dict.fromkeys(COUNTS, 0),
    }


def start(definition: Definition, *, run: str) -> None:
    """Enqueue the first chunk of a rebuild of this definition."""
    queues.send(queue_url(), first_message(definition, run=run))
    metrics.add_metric(name="RebuildsStarted", unit=MetricUnit.Count, value=1)


@dataclass(frozen=True)
class Outcome:
    status: Literal["chunk done", "ready", "resent", "superseded", "deleted", "duplicate", "lost race", "stale run"]
    message: Mapping[str, Any]
    next_message: Mapping[str, Any] | None = None


def process(message: Mapping[str, Any], *, receive_count: int = 1) -> Outcome:
    """Do one chunk of a rebuild (see the module's docstring)."""
    org_id, segment_id = str(message["org_id"]), str(message["segment_id"])
    version, run, chunk = int(message["definition_version"]), str(message["run"]), int(message["chunk"])
    record = segment_store.get_any(org_id, segment_id)
    if record is None or not record.live:
        return _dropped("deleted", message)
    definition = Definition.of_segment(record)
    if definition.version != version or not definition.needs_build:
        return _dropped("superseded", message)
    progress = record.build_progress or {}
    recorded = int(progress.get("chunk", 0)) if progress.get("run") == run else 0
    if recorded > chunk:
        if recorded == chunk + 1 and receive_count > 1 and progress.get("phase") != "done":
            # We recorded this chunk and may have died before sending the next one: send it again.
            nxt = _message(message, progress)
            queues.send(queue_url(), nxt)
            return Outcome("resent", message, nxt)
        return _dropped("duplicate", message)
    if recorded < chunk:
        return _dropped("stale run", message)

    phase: Phase = message["phase"]
    counts = {k: int((message.get("counts") or {}).get(k, 0)) for k in COUNTS}
    actor = Actor(
        org_id=org_id,
        bucket=definition.bucket or "-",
        reason="rule",
        request_id="req_" + _digest(segment_id, str(version), run, str(chunk)),
    )
    key = "rb_" + _digest("rebuild", segment_id, str(version), run, str(chunk))
    cursor = message.get("cursor")
    next_cursor: str | None = None
    size = chunk_size()
    if phase == "includes":
        pids = sorted(definition.include - (definition.exclude if definition.segment_type == "hybrid" else set()))
        _converge(actor, definition, dict.fromkeys(pids, True), key, counts)
        next_phase = _after(phase, definition)
    elif phase == "people":
        records, next_cursor = rule_index.people_page(org_id, after_pid=cursor, limit=size)
        wanted: dict[str, bool] = {}
        seen: dict[str, Mapping[str, Any] | None] = {}
        for rec in records:
            pid = str(rec.get("minerva_pid") or "")
            seen[pid] = person(rec)
            verdict = definition.wants(pid, seen[pid]) if pid else None
            if verdict is not None:
                wanted[pid] = verdict
                counts["matched"] += int(verdict)
        counts["scanned"] += len(records)
        _converge(actor, definition, wanted, key, counts, seen=seen)
        next_phase = phase if next_cursor else _after(phase, definition)
    elif phase == "members":
        page = [m["minerva_pid"] for m in member_store.active_page(segment_id, after=cursor, want=size)]
        with_record = rule_index.with_records(org_id, page)
        orphans = {p: False for p in page if p not in with_record and definition.wants(p, None) is False}
        _converge(actor, definition, orphans, key, counts, seen=dict.fromkeys(orphans))
        next_cursor = page[-1] if len(page) == size else None
        next_phase = phase if next_cursor else "done"
    else:
        return _dropped("duplicate", message)

    done = next_phase == "done"
    recorded_progress = {
        "run": run,
        "definition_version": version,
        "chunk": chunk + 1,
        "phase": next_phase,
        "cursor": next_cursor,
        **counts,
    }
    if not rule_index.record_progress(
        org_id, segment_id, definition_version=version, run=run, chunk=chunk, progress=recorded_progress, ready=done
    ):
        return _dropped("lost race", message)
    metrics.add_metric(name="RebuildChunks", unit=MetricUnit.Count, value=1)
    logger.info(
        "rebuild chunk done",
        extra={
            "segment_id": segment_id,
            "definition_version": version,
            "run": run,
            "chunk": chunk,
            "phase": phase,
            **counts,
            "ready": done,
        },
    )
    if done:
        metrics.add_metric(name="RebuildsReady", unit=MetricUnit.Count, value=1)
        return Outcome("ready", message)
    nxt = _message(message, recorded_progress)
    queues.send(queue_url(), nxt)
    return Outcome("chunk done", message, nxt)


def _converge(
    actor: Actor,
    definition: Definition,
    wanted: Mapping[str, bool],
    key: str,
    counts: dict[str, int],
    *,
    seen: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> None:
    """Make each PID's membership what `wanted` says, writing only what differs (and what this
    chunk's earlier attempt wrote: that write is done again so the member-write path recounts the
    size a dead attempt left dirty, and counts it once).

    `seen` (people and members phases): the person record each verdict was made from (None: no
    record). A verdict is only as new as its record, and a live change may have been judged since
    (docs/decisions.md, "Races between a rebuild and a live change"): before writing, the records
    of the PIDs to write are read again and those that changed are judged anew; after writing, they
    are read once more, and any that changed meanwhile are judged and written again, until a read
    after the writes finds every record as judged. A change later than that read reaches the live
    path after the writes, which then sees them."""
    if not wanted:
        return
    if seen is None:
        _write(actor, definition, _to_write(_stored(definition, wanted), wanted, key), key, counts)
        return
    pending, used = dict(wanted), dict(seen)
    for attempt in range(VERIFY_ROUNDS):
        round_key = key if attempt == 0 else f"{key}-{attempt}"
        stored = _stored(definition, pending)
        writes = _to_write(stored, pending, round_key)
        if not writes:
            return
        pending = _judged(definition, rule_index.records(definition.org_id, list(writes)), writes, used)
        writes = _to_write(stored, pending, round_key)
        if not writes:
            return
        _write(actor, definition, writes, round_key, counts)
        after = rule_index.records(definition.org_id, list(writes))
        moved = {p for p in writes if _record(after.get(p)) != used.get(p)}
        if not moved:
            return
        metrics.add_metric(name="RebuildVerdictsRedone", unit=MetricUnit.Count, value=len(moved))
        pending = _judged(definition, after, dict.fromkeys(moved, False), used)
    raise errors.Retryable("person records kept changing while a rebuild chunk wrote their verdicts")


def _record(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return person(item) if item is not None else None


def _judged(
    definition: Definition,
    fresh: Mapping[str, Mapping[str, Any]],
    verdicts: Mapping[str, bool],
    used: dict[str, Mapping[str, Any] | None],
) -> dict[str, bool]:
    """The verdicts, each made anew from its fresh record when that record differs from the one
    it was made from (`used`, updated); a PID its rules cannot judge is left out."""
    out: dict[str, bool] = {}
    for pid, want in verdicts.items():
        record = _record(fresh.get(pid))
        if record != used.get(pid):
            used[pid] = record
            judged = definition.wants(pid, record)
            if judged is None:
                continue
            want = judged
        out[pid] = want
    return out


def _stored(definition: Definition, wanted: Mapping[str, bool]) -> dict[str, dict[str, Any]]:
    return rule_index.members_of(definition.segment_id, list(wanted))


def _to_write(stored: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, bool], key: str) -> dict[str, bool]:
    """The verdicts that differ from the stored memberships, and those this key already wrote."""
    out: dict[str, bool] = {}
    for pid, want in wanted.items():
        member = stored.get(pid) or {}
        op = str(member.get("last_op") or "").rpartition("@")[0]
        if bool(member.get("active")) != want or op == f"{'added' if want else 'removed'}#{key}":
            out[pid] = want
    return out


def _write(actor: Actor, definition: Definition, writes: Mapping[str, bool], key: str, counts: dict[str, int]) -> None:
    limit = get_settings().max_pids_per_request
    for batch in _batches([p for p, want in writes.items() if want], limit):
        counts["added"] += members.add_members(actor, definition.segment_id, batch, idempotency_key=key).n_changed
    for batch in _batches([p for p, want in writes.items() if not want], limit):
        counts["removed"] += members.remove_members(actor, definition.segment_id, batch, idempotency_key=key).n_changed


def _batches(pids: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(pids), size):
        yield pids[i : i + size]


def _message(message: Mapping[str, Any], progress: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "org_id": message["org_id"],
        "segment_id": message["segment_id"],
        "definition_version": int(message["definition_version"]),
        "run": str(message["run"]),
        "chunk": int(progress["chunk"]),
        "phase": progress["phase"],
        "cursor": progress.get("cursor"),
        "counts": {k: int(progress.get(k, 0)) for k in COUNTS},
    }


def _dropped(status: Any, message: Mapping[str, Any]) -> Outcome:
    metrics.add_metric(name="RebuildMessagesDropped", unit=MetricUnit.Count, value=1)
    logger.info(
        "rebuild message dropped",
        extra={
            "status": status,
            "segment_id": message.get("segment_id"),
            "definition_version": message.get("definition_version"),
            "chunk": message.get("chunk"),
        },
    )
    return Outcome(status, message)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def process_message(body: str, *, receive_count: int = 1) -> Outcome:
    """A queue message's body; a malformed one raises ValidationFailed (it lands in the DLQ)."""
    try:
        message = json.loads(body)
        for name in ("org_id", "segment_id", "definition_version", "run", "chunk", "phase"):
            message[name]
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ValidationFailed("malformed rebuild message") from exc
    return process(message, receive_count=receive_count)
