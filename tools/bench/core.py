"""The benchmarks' only door into the core (`layers/core/segments`).

Every use of `segments.*` by a benchmark goes through a function here, so a change of the core's
internal API is a change of this file only. The core is imported lazily (inside the functions):
listing the benchmarks or measuring cold imports must not import it, and `function_env()` puts
`layers/core` on `sys.path` first.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segments.store.segments import SegmentRecord

CORE_DIR = Path(__file__).resolve().parents[2] / "layers" / "core"

# Modules of the core that cache clients or settings, reset when the endpoint or environment changes.
CACHING_MODULES = ("segments.store", "segments.idempotency")


def ensure_importable() -> None:
    """Put `layers/core` on `sys.path` (as the layer is on Lambda) if it is not there yet."""
    core = str(CORE_DIR)
    if core not in sys.path:
        sys.path.insert(0, core)


def reset_core() -> None:
    """Drop the cached clients/settings of the core so a new endpoint or environment takes effect.
    Only modules already imported are reset (nothing is imported for it)."""
    for module_name in CACHING_MODULES:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "reset"):
            module.reset()


def dynamo_client() -> Any:
    """The core's DynamoDB client (the one the handlers use in this process)."""
    from segments.store import dynamo

    return dynamo.client()


def table_name() -> str:
    """The physical name of the segments table, as the core reads it from the environment."""
    from segments.store import dynamo

    return dynamo.table()


def create_segment(org_id: str, bucket: str, name: str) -> str:
    """Create an empty segment through the core's use case (not through a handler); its id."""
    from segments.models import Actor, NewSegment
    from segments.usecases.segments import create_segment as create

    actor = Actor(org_id=org_id, bucket=bucket, request_id="req_" + uuid.uuid4().hex, reason="admin")
    return create(actor, NewSegment(name=name)).segment_id


def now_iso() -> str:
    """The current time as the core writes it in items."""
    from segments.timefmt import iso, now

    return iso(now())


def new_member_item(org_id: str, segment_id: str, pid: str, at: str) -> dict[str, Any]:
    """The stored item (DynamoDB attribute map) of a member added at `at`, as an add writes it."""
    from segments.store import dynamo, members

    member = {
        "org_id": org_id,
        "segment_id": segment_id,
        "minerva_pid": pid,
        "active": True,
        "first_added_at": at,
        "last_added_at": at,
        "last_op": f"added#req_{'0' * 32}@{at}",
    }
    return dynamo.to_item(members.member_item(member))


def member_sort_key(pid: str) -> str:
    """The sort key of a member item (a segment's members are read in this order)."""
    from segments.store import keys

    return keys.pid_sk(pid)


def member_items(segment_id: str) -> Iterator[dict[str, Any]]:
    """Every stored member item of a segment (raw attribute maps), read page by page."""
    from segments.store import dynamo, keys

    pages = dynamo.query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues=dynamo.values(pk=keys.member_pk(segment_id), p=keys.PID),
    )
    for page in pages:
        yield from page["Items"]


# ------------------------------------------------------------------ signals


def write_items(items: list[dict[str, Any]]) -> None:
    """Write stored items (raw attribute maps) with the core's batch writes (25 a call, in parallel)."""
    from segments.store import dynamo

    dynamo.in_parallel(dynamo.batch_write, [{"PutRequest": {"Item": i}} for i in items], dynamo.BATCH_WRITE_MAX)


def member_key(segment_id: str, pid: str) -> dict[str, Any]:
    """The key (attribute map) of a member item."""
    from segments.store import keys

    return keys.member_key(segment_id, pid)


def is_active_member_item(item: dict[str, Any]) -> bool:
    return bool(item.get("active", {}).get("BOOL"))


def ingest_event(detail: dict[str, Any]) -> Any:
    """Ingest one person event (the `detail` of a bus event) through the core's use case."""
    from segments.events.person_events import parse
    from segments.usecases.ingest import ingest

    return ingest(parse(detail))


def signal_fact(detail: dict[str, Any]) -> dict[str, Any]:
    """The stored fact of a lifecycle person event (validated as the consumer validates it)."""
    from segments.events.person_events import parse
    from segments.usecases.ingest import fact_of

    return fact_of(parse(detail))


def store_fact(fact: dict[str, Any]) -> bool:
    """Store a fact, its person's marker and its id's claim (one transaction); False when already stored."""
    from segments.store import signals
    from segments.usecases.ingest import digest_of

    return signals.put_fact(fact, digest=digest_of(fact))


def write_feed(fact: dict[str, Any], segments: list[tuple[str, str]]) -> None:
    """The feed entries of a fact in (org_id, segment_id) segments, written as the ingest writes them."""
    from segments.store import signals
    from segments.usecases.ingest import feed_entries

    signals.put_feed(feed_entries(fact, segments))


def ledger_items(segment_id: str) -> list[dict[str, Any]]:
    """The stored ledger items of a segment (raw attribute maps), oldest first."""
    from segments.store import dynamo, keys

    found: list[dict[str, Any]] = []
    for page in dynamo.query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues=dynamo.values(pk=keys.member_pk(segment_id), p=keys.LOG),
    ):
        found.extend(page["Items"])
    return found


def feed_count(segment_id: str) -> int:
    """The number of feed entries stored for a segment (every type)."""
    from segments.store import dynamo, keys

    return sum(
        int(page.get("Count", 0))
        for page in dynamo.query_pages(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues=dynamo.values(pk=keys.member_pk(segment_id), p=keys.SIG),
            Select="COUNT",
        )
    )


def with_signals(pids: list[str]) -> set[str]:
    """The PIDs among `pids` that have a stored signal (their markers)."""
    from segments.store import signals

    return signals.with_signals(pids)


# ------------------------------------------------------------------ rules


def stored_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules validated as a create stores them (numbers as Decimal); ValidationFailed if invalid."""
    from segments.rules import validate_rules

    return [rule.model_dump() for rule in validate_rules(rules)]


def compile_rules(rules: list[dict[str, Any]]) -> Any:
    """The core's evaluator: one predicate over person records for a segment's rules."""
    from segments.rules import compile_rules as compile_

    return compile_(rules)


# ------------------------------------------------------------------ rule segments


def create_rule_segments(org_id: str, bucket: str, specs: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    """Rule segments (name, rules) of type dynamic, written as the create use case writes them but
    in batches (no name-lock transaction: moto copies every table on each transaction), and filed
    in the org's rule index as RuleMembershipFunction files them on the segments' INSERTs. Their ids."""
    from segments.models import NewSegment, Segment, name_key
    from segments.store import dynamo, rule_index, segments
    from segments.timefmt import iso, now
    from segments.usecases.rule_definitions import Definition

    at = iso(now())
    made = [
        Segment(
            segment_id=str(uuid.uuid4()),
            org_id=org_id,
            bucket=bucket,
            created_at=at,
            updated_at=at,
            **NewSegment(name=name, segment_type="dynamic", rules=rules).model_dump(),
        )
        for name, rules in specs
    ]
    dynamo.put_items([segments.segment_item(m.model_dump(), name_key(m.name)) for m in made])
    for m in made:
        definition = Definition.of_segment(m.model_dump())
        for field in sorted(definition.fields()):
            rule_index.put_entry(org_id, field, m.segment_id, definition.entry())
    return [m.segment_id for m in made]


def put_people(org_id: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Person records of an org's registry (pid, attributes), written in parallel batches."""
    from segments.store import dynamo, keys

    dynamo.put_items(
        [
            {**attrs, "pk": keys.people_pk(org_id), "sk": keys.pid_sk(pid), "org_id": org_id, "minerva_pid": pid}
            for pid, attrs in records
        ]
    )


def person_item(org_id: str, pid: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """A person record as its stream image holds it (plain values)."""
    from segments.store import keys

    return {**attrs, "pk": keys.people_pk(org_id), "sk": keys.pid_sk(pid), "org_id": org_id, "minerva_pid": pid}


def reevaluate(
    org_id: str, pid: str, old: dict[str, Any], new: dict[str, Any], change_id: str, *, created: bool = False
) -> dict[str, Any]:
    """The real-time path for one changed (or `created`) record: {segments_evaluated, added, removed}."""
    from segments.usecases import rule_membership

    result = rule_membership.reevaluate(org_id, pid, old, new, change_id=change_id, created=created)
    return {"segments_evaluated": result.segments_evaluated, "added": result.added, "removed": result.removed}


def reevaluate_all(org_id: str, pid: str, new: dict[str, Any], segment_ids: list[str]) -> dict[str, Any]:
    """The baseline: every rule segment of the org evaluated for the record (its definitions and
    the PID's memberships read in batches), membership changes written the same way."""
    from segments.models import Actor
    from segments.store import rule_index, segments
    from segments.usecases import members
    from segments.usecases.rule_definitions import Definition, person

    records = segments.live_by_id(org_id, segment_ids)
    stored = rule_index.memberships(pid, segment_ids)
    record = person(new)
    actor = Actor(org_id=org_id, bucket="-", request_id="req_" + uuid.uuid4().hex, reason="rule")
    changed = 0
    for segment_id, seg in records.items():
        wanted = Definition.of_segment(seg).wants(pid, record)
        if wanted is None or bool((stored.get(segment_id) or {}).get("active")) == wanted:
            continue
        (members.add_members if wanted else members.remove_members)(actor, segment_id, [pid])
        changed += 1
    return {"segments_evaluated": len(records), "changed": changed}


def compiled(org_id: str, segment_id: str, rules: list[dict[str, Any]]) -> Any:
    """The compiled predicate the core evaluates a rule segment's rules with."""
    from segments.usecases.rule_definitions import Definition, matcher

    return matcher(
        Definition(
            org_id=org_id,
            segment_id=segment_id,
            bucket="",
            segment_type="dynamic",
            rules=tuple(rules),
            include=frozenset(),
            exclude=frozenset(),
            version=1,
            live=True,
        )
    )


def segment_record(org_id: str, segment_id: str) -> SegmentRecord | None:
    from segments.store import segments

    return segments.get_any(org_id, segment_id)


def start_rebuild(org_id: str, segment_id: str, run: str) -> None:
    """Enqueue the first chunk of a rebuild of the segment's current definition (REBUILD_QUEUE_URL)."""
    from segments.usecases import rebuild
    from segments.usecases.rule_definitions import Definition

    record = segment_record(org_id, segment_id)
    assert record is not None
    rebuild.start(Definition.of_segment(record), run=run)


def kill_progress_once(at_chunk: int) -> Any:
    """Make the rebuild's progress write of chunk `at_chunk` raise once (a chunk killed after its
    member writes); returns a function that undoes it."""
    from segments.store import rule_index

    real = rule_index.record_progress
    state = {"done": False}

    def dying(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("chunk") == at_chunk and not state["done"]:
            state["done"] = True
            raise RuntimeError("chunk killed")
        return real(*args, **kwargs)

    rule_index.record_progress = dying  # type: ignore[assignment]

    def undo() -> None:
        rule_index.record_progress = real  # type: ignore[assignment]

    return undo


def people_scan(org_id: str, page: int) -> int:
    """The baseline of a rebuild: read every person record of the org in pages (no evaluation)."""
    from segments.store import rule_index

    after: str | None = None
    total = 0
    while True:
        records, after = rule_index.people_page(org_id, after_pid=after, limit=page)
        total += len(records)
        if after is None:
            return total


def reset_queues() -> None:
    from segments import queues
    from segments.usecases import rule_definitions

    queues.reset()
    rule_definitions.clear_cache()


# ------------------------------------------------------------------ exports


def seed_export_segment(org_id: str, bucket: str, n: int, record: Any) -> str:
    """A static segment of n members (member items written whole, 5,000 at a time) whose person
    records are `record(i)`; its id."""
    from segments.models import Actor, NewSegment
    from segments.store import dynamo, members
    from segments.usecases import segments

    who = Actor(org_id=org_id, bucket=bucket, request_id="req_bench", reason="admin")
    made = segments.create_segment(who, NewSegment(name=f"Export {n} {uuid.uuid4().hex[:6]}", segment_type="static"))
    at = "2025-01-01T00:00:00.000000Z"
    for start in range(0, n, 5_000):
        pids = [f"p-{made.segment_id[:4]}{i:07d}" for i in range(start, min(n, start + 5_000))]
        member = {"org_id": org_id, "segment_id": made.segment_id, "active": True}
        dynamo.put_items(
            [members.member_item({**member, "minerva_pid": p, "first_added_at": at, "last_added_at": at}) for p in pids]
        )
        put_people(org_id, [(p, record(i)) for i, p in enumerate(pids, start=start)])
    return made.segment_id


def run_export(org_id: str, bucket: str, segment_id: str, fmt: str, fields: list[str]) -> dict[str, Any]:
    """An export job run here, chunk after chunk (as ExportFunction runs them off the queue): the
    finished job and each chunk's seconds."""
    from segments.models import Actor
    from segments.usecases import exports

    who = Actor(org_id=org_id, bucket=bucket, request_id="req_bench", reason="admin")
    pending: list[Any] = []
    seconds: list[float] = []
    job = exports.start(who, segment_id, fmt=fmt, fields=fields, surface="minerva", send=pending.append)  # type: ignore[arg-type]
    while pending:
        at = time.perf_counter()
        exports.process(pending.pop(0), send=pending.append)
        seconds.append(time.perf_counter() - at)
    return {"job": exports.get_job(who, job["export_id"]), "chunk_seconds": seconds}


@contextlib.contextmanager
def patient_dynamodb(read_timeout: int = 60) -> Iterator[None]:
    """Inside the block, a DynamoDB client that waits `read_timeout` s for an answer (a moto server
    paging a large partition takes longer than the 5 s the functions allow); clients made afresh."""
    from segments import aws

    saved = aws.SERVICE_CONFIG["dynamodb"]
    aws.SERVICE_CONFIG["dynamodb"] = {**saved, "read_timeout": read_timeout}
    reset_core()
    try:
        yield
    finally:
        aws.SERVICE_CONFIG["dynamodb"] = saved
        reset_core()


# ------------------------------------------------------------------ Mailchimp audience sync


def mailchimp_setup(org_id: str, bucket: str, name: str, api_key: str, audience: str) -> str:
    """The org's Mailchimp credentials (Secrets Manager) and a segment with mailchimp_sync; its id."""
    from segments.mailchimp import credentials
    from segments.models import Actor, NewSegment
    from segments.usecases.segments import create_segment as create

    credentials.save(org_id, credentials.Credentials(api_key, audience))
    actor = Actor(org_id=org_id, bucket=bucket, request_id="req_" + uuid.uuid4().hex, reason="admin")
    return create(actor, NewSegment(name=name, mailchimp_sync=True)).segment_id


def mailchimp_full_sync(org_id: str, bucket: str, segment_id: str) -> str:
    """Queue a full sync job (as `all/sync_mailchimp` does); the job id."""
    from segments.models import Actor
    from segments.usecases import mailchimp_full_sync

    actor = Actor(org_id=org_id, bucket=bucket, request_id="req_" + uuid.uuid4().hex, reason="api")
    return str(
        mailchimp_full_sync.request_full_sync(actor, segment_id, batch_size=500, segment_name=None, verbose=False)[
            "job_id"
        ]
    )


def mailchimp_state(org_id: str, segment_id: str) -> dict[str, Any]:
    from segments.store import mailchimp

    return mailchimp.get_state(org_id, segment_id)


def remove_members(org_id: str, bucket: str, segment_id: str, members: list[str]) -> None:
    from segments.models import Actor
    from segments.usecases import members as usecase

    actor = Actor(org_id=org_id, bucket=bucket, request_id="req_" + uuid.uuid4().hex, reason="api")
    usecase.remove_members(actor, segment_id, members)


def dispatched_concerns(record: dict[str, Any]) -> list[str]:
    """The concerns StreamDispatcherFunction forwards a stream record to (none: not dispatched)."""
    from segments.adapters.dynamodb_stream import StreamChange
    from segments.adapters.stream_dispatch import concerns_of

    return concerns_of(StreamChange(record))


def create_api_key(org_id: str, bucket: str) -> str:
    """A new API key of the org (as `segments-admin create-api-key` makes it)."""
    from segments import auth

    return str(auth.create_api_key(org_id, bucket, label="bench").api_key)


def reset_clients() -> None:
    """The core's AWS clients and settings made again (after the environment changed)."""
    from segments import aws

    aws.reset()
