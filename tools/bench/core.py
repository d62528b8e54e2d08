"""The benchmarks' only door into the core (`layers/core/segments`).

Every use of `segments.*` by a benchmark goes through a function here, so a change of the core's
internal API is a change of this file only. The core is imported lazily (inside the functions):
listing the benchmarks or measuring cold imports must not import it, and `function_env()` puts
`layers/core` on `sys.path` first.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    from segments.person_events import parse
    from segments.usecases.ingest import ingest

    return ingest(parse(detail))


def signal_fact(detail: dict[str, Any]) -> dict[str, Any]:
    """The stored fact of a lifecycle person event (validated as the consumer validates it)."""
    from segments.person_events import parse
    from segments.usecases.ingest import fact_of

    return fact_of(parse(detail))


def store_fact(fact: dict[str, Any]) -> bool:
    """Store a fact and its person's marker (one transaction); False when already stored."""
    from segments.store import signals

    return signals.put_fact(fact)


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
