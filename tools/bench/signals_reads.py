"""`signals-reads`: the DynamoDB reads of a page of 100 signals from a segment of 100,000 members
against the same page from a segment of 100 members, through SignalsApiFunction's handler under
in-process moto (docs/performance.md, "Signals").

Scale: `SIGNALS_BENCH_SCALE` (default 1) multiplies the large segment's members (printed).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from tools.bench import core
from tools.bench.harness import (
    ORG,
    Options,
    Rows,
    api_event,
    benchmark,
    invoke,
    load_handler,
    new_segment,
    person_event,
    pids,
    quiet,
    say,
)
from tools.bench.moto import moto_at_scale

LARGE, SMALL, PAGE = 100_000, 100, 100
SHARED_SIGNALS = 150  # job changes of the small segment's members, who are in the large one too
LARGE_ONLY_SIGNALS = 300  # older job changes of other members of the large segment
PATH = "/v2/segments/signals/job_changes"


def _size(item: dict[str, Any]) -> int:
    """About DynamoDB's size of an item (attribute names plus values)."""
    return sum(len(name.encode()) + len(json.dumps(value).encode()) for name, value in item.items())


class Reads:
    """The reads of the core's client while registered: calls, items read, read units (computed as
    DynamoDB charges eventually consistent reads: a Query per 4 KB of what it returned, a batch or
    single read per item asked for, found or not, each rounded up to 4 KB)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.items = 0
        self.units = 0.0
        self._asked: list[int] = []

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "BatchGetItem":
            self._asked.append(sum(len(t["Keys"]) for t in params["RequestItems"].values()))

    def after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if model.name == "Query":
            self.items += int(parsed.get("ScannedCount", 0))
            self.units += math.ceil(max(1, sum(_size(i) for i in parsed.get("Items", []))) / 4096) * 0.5
        elif model.name == "BatchGetItem":
            asked = self._asked.pop(0) if self._asked else 0
            self.items += asked
            self.units += asked * 0.5
        elif model.name == "GetItem":
            self.items += 1
            self.units += math.ceil(max(1, _size(parsed.get("Item", {}))) / 4096) * 0.5

    def summary(self) -> dict[str, Any]:
        return {"calls": dict(sorted(self.calls.items())), "items read": self.items, "read units": self.units}


def page_reads(segment_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first page of PAGE job changes of a segment and its reads."""
    client = core.dynamo_client()
    reads = Reads()
    client.meta.events.register("before-parameter-build.dynamodb", reads.before, unique_id="bench-sig-before")
    client.meta.events.register("after-call.dynamodb", reads.after, unique_id="bench-sig-after")
    try:
        event = api_event("GET", PATH, authorizer=ORG, query={"segment_id": segment_id, "limit": str(PAGE)})
        result = invoke(load_handler("SignalsApiFunction"), event)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", unique_id="bench-sig-before")
        client.meta.events.unregister("after-call.dynamodb", unique_id="bench-sig-after")
    if result["statusCode"] != 200:
        raise RuntimeError(f"signals answered {result['statusCode']}: {result.get('body')}")
    return json.loads(result["body"]), reads.summary()


def measure(s: float | None = None) -> Rows:
    s = float(os.environ.get("SIGNALS_BENCH_SCALE", "1")) if s is None else s
    n_large = max(SMALL + LARGE_ONLY_SIGNALS, int(LARGE * s))
    with moto_at_scale():
        with quiet():  # the use cases' metrics
            large, small = new_segment("signals reads large"), new_segment("signals reads small")
            at = core.now_iso()
            members = pids(n_large, prefix="r")
            core.write_items([core.new_member_item(ORG["org_id"], large, p, at) for p in members])
            core.write_items([core.new_member_item(ORG["org_id"], small, p, at) for p in members[:SMALL]])
            for n in range(SHARED_SIGNALS):  # newest: in both segments
                core.ingest_event(
                    person_event(
                        "job_change",
                        members[n % SMALL],
                        f"evt-shared-{n:04d}",
                        f"2024-03-01T10:{n // 60:02d}:{n % 60:02d}.000000Z",
                    )
                )
            for n in range(LARGE_ONLY_SIGNALS):  # older: in the large segment only
                core.ingest_event(
                    person_event(
                        "job_change",
                        members[SMALL + n],
                        f"evt-large-{n:04d}",
                        f"2024-02-01T10:{n // 60:02d}:{n % 60:02d}.000000Z",
                    )
                )
        feed = {"large": core.feed_count(large), "small": core.feed_count(small)}
        page_reads(small)  # warm-up: import the handler, connect
        large_page, large_reads = page_reads(large)
        small_page, small_reads = page_reads(small)
    for page in (large_page, small_page):
        assert len(page["results"]) == PAGE and page["next_cursor"], "a full page with more after it"
    met = large_reads == small_reads
    say(
        f"(scale {s:g}) a page of {PAGE} job changes; in-process moto, SignalsApiFunction's handler; read units "
        "computed from the items (moto reports none for the core's calls)"
    )
    say(f"    {n_large:,}-member segment ({feed['large']} signals): {large_reads}")
    say(f"    {SMALL}-member segment ({feed['small']} signals):     {small_reads}")
    say(f"    target: the same reads: {'met' if met else 'NOT met'}")

    def fmt(reads: dict[str, Any]) -> str:
        calls = ", ".join(f"{n} {op}" for op, n in reads["calls"].items())
        return f"{calls}; {reads['items read']} items read, {reads['read units']:g} RCU"

    return [
        ("reads: scale", f"{s:g}"),
        (f"reads: page of {PAGE}, {n_large:,}-member segment ({feed['large']} signals)", fmt(large_reads)),
        (f"reads: page of {PAGE}, {SMALL}-member segment ({feed['small']} signals)", fmt(small_reads)),
        ("reads: target", "met" if met else "NOT met"),
    ]


@benchmark("signals-reads", "a page of 100 signals: the same reads from 100,000 members as from 100")
def signals_reads(opts: Options) -> dict[str, str]:
    return dict(measure())
