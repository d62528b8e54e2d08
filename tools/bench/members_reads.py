"""`members-reads`: Query calls, items read and read units of a first members page against a deep
page by cursor (and by number), through SegmentQueryFunction under in-process moto
(docs/performance.md, "Members")."""

from __future__ import annotations

import json
import math
from typing import Any

from tools.bench import core
from tools.bench.harness import (
    N_PIDS,
    ORG,
    Options,
    Rows,
    add_members,
    api_event,
    benchmark,
    function_env,
    invoke,
    load_handler,
    new_segment,
    pids,
    say,
)
from tools.bench.moto import moto_in_process


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values (strings and numbers as stored)."""
    total = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        total += len(name.encode())
        if kind == "S":
            total += len(raw.encode())
        elif kind == "N":
            total += math.ceil(len(raw.lstrip("-").replace(".", "")) / 2) + 1
        elif kind in ("BOOL", "NULL"):
            total += 1
        else:
            total += len(json.dumps(raw))
    return total


def measure() -> Rows:
    """Query calls, items read and read units of a first members page vs a deep page by cursor."""
    n_members, deep = 4 * 5_000, 3  # a deep page that is not the last (the last has nothing to look ahead to)
    with function_env(), moto_in_process():
        segment_id = new_segment("bench reads")
        for start in range(0, n_members, N_PIDS):
            add_members(segment_id, pids(N_PIDS, prefix=f"{start // N_PIDS}"))
        sizes = {i["sk"]["S"]: _item_size(i) for i in core.member_items(segment_id)}
        order = sorted(sizes)
        handler = load_handler("SegmentQueryFunction")
        seen: list[dict[str, Any]] = []

        def hook(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "Query":
                seen.append(parsed)

        def page_cost(query: dict[str, str]) -> tuple[dict[str, Any], dict[str, float]]:
            seen.clear()
            core.dynamo_client().meta.events.register("after-call.dynamodb.Query", hook, unique_id="bench-reads")
            try:
                event = api_event(
                    "GET", "/v2/segments/members", authorizer=ORG, query={"segment_id": segment_id, **query}
                )
                result = invoke(handler, event)
            finally:
                core.dynamo_client().meta.events.unregister("after-call.dynamodb.Query", unique_id="bench-reads")
            body = json.loads(result["body"])["results"]
            first_pid = body["items"][0]["minerva_pid"] if body["items"] else None
            start = order.index(core.member_sort_key(first_pid)) if first_pid else 0
            if "cursor" not in query:
                start = 0
            units = 0.0
            for parsed in seen:  # each Query pays for the items it evaluated, rounded up to 4 KB
                scanned = order[start : start + int(parsed.get("ScannedCount", 0))]
                units += math.ceil(sum(sizes[sk] for sk in scanned) / 4096) * 0.5  # eventually consistent
                start += len(scanned)
            cost = {
                "queries": len(seen),
                "items read": sum(int(p.get("ScannedCount", 0)) for p in seen),
                "read units": units,
            }
            return body, cost

        first, first_cost = page_cost({})
        cursor = first["next_cursor"]
        for _ in range(deep - 2):
            cursor = page_cost({"cursor": cursor})[0]["next_cursor"]
        deep_page, deep_cost = page_cost({"cursor": cursor})
        _, by_number_cost = page_cost({"page": str(deep)})
    assert deep_page["items"] and deep_page["next_cursor"]
    say(f"(c) reads of a members page (5,000 items) of a {n_members:,}-member segment")
    say(f"    page 1:                   {first_cost}")
    say(
        f"    page {deep} by cursor:        {deep_cost}   (target: the same as page 1: "
        f"{'met' if deep_cost == first_cost else 'NOT met'})"
    )
    say(f"    page {deep} by number:        {by_number_cost}   (for comparison)")

    def fmt(cost: dict[str, float]) -> str:
        return f"{cost['queries']} Query, {cost['items read']:,} items read, {cost['read units']:g} RCU"

    return [
        ("reads: page 1", fmt(first_cost)),
        (f"reads: page {deep} by cursor", fmt(deep_cost)),
        (f"reads: page {deep} by number", fmt(by_number_cost)),
        ("reads: target", "met" if deep_cost == first_cost else "NOT met"),
    ]


@benchmark("members-reads", "a deep members page by cursor costs the reads of the first page")
def members_reads(opts: Options) -> dict[str, str]:
    return dict(measure())
