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
CACHING_MODULES = ("segments.storage", "segments.idempotency")


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
    from segments import storage

    return storage.client()


def table_name() -> str:
    """The physical name of the segments table, as the core reads it from the environment."""
    from segments import storage

    return storage.table()


def create_segment(org_id: str, bucket: str, name: str) -> str:
    """Create an empty segment through the core's use case (not through a handler); its id."""
    from segments import logic
    from segments.models import Caller, NewSegment

    caller = Caller(org_id=org_id, bucket=bucket, request_id="req_" + uuid.uuid4().hex)
    return logic.create_segment(caller, NewSegment(name=name)).segment_id


def now_iso() -> str:
    """The current time as the core writes it in items."""
    from segments.timefmt import iso, now

    return iso(now())


def new_member_item(org_id: str, segment_id: str, pid: str, at: str) -> dict[str, Any]:
    """The stored item (DynamoDB attribute map) of a member added at `at`, as an add writes it."""
    from segments import storage

    member = {
        "org_id": org_id,
        "segment_id": segment_id,
        "minerva_pid": pid,
        "active": True,
        "first_added_at": at,
        "last_added_at": at,
        "last_op": f"added#req_{'0' * 32}@{at}",
    }
    return storage.to_item(storage.member_item(member))


# Member items: pk SEG#{segment_id}, sk PID#{pid} (the key layout of segments/storage.py).
MEMBER_SK_PREFIX = "PID#"


def member_sort_key(pid: str) -> str:
    """The sort key of a member item (a segment's members are read in this order)."""
    return f"{MEMBER_SK_PREFIX}{pid}"


def member_items(segment_id: str) -> Iterator[dict[str, Any]]:
    """Every stored member item of a segment (raw attribute maps), read page by page."""
    from segments import storage

    pages = storage.query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues=storage.values(pk=storage.member_pk(segment_id), p=MEMBER_SK_PREFIX),
    )
    for page in pages:
        yield from page["Items"]
