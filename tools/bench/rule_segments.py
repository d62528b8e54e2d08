"""`rule-realtime` and `rule-rebuild`: rule segments (docs/performance.md, "Rule segments").

rule-realtime: one changed person record against an org with 1,000 dynamic segments, 10 of which
read the changed field: the rule index path (RuleMembershipFunction's use case) against
re-evaluating all 1,000 segments, same run, in-process moto. DynamoDB calls per record, rule
evaluations, and in-process evaluation time. Then a new record, with 10 more segments whose rules
(`not_equal_to` a field it lacks) it matches: only the segments reading its fields and those 10 are
evaluated, in the same two reads, and it joins the 10.

rule-rebuild: a dynamic segment rebuilt over N person records (RebuildFunction's handler on the
RebuildQueue's messages, in-process moto), records/s against a plain paged read of the same
records in the same run; then the same rebuild with one chunk killed after its member writes and
redelivered: nothing counted twice, nothing missed.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

from tools.bench import core
from tools.bench.calls import DynamoCalls
from tools.bench.harness import ORG, Options, benchmark, function_env, invoke, load_handler, say
from tools.bench.moto import moto_in_process

SEGMENTS = 1_000
READERS = 10  # segments whose rules read the changed field
NEGATIVE = 10  # segments a new record lacking their field joins (not_equal_to)
SAMPLES = 25
REBUILD_RECORDS = int(os.environ.get("BENCH_REBUILD_RECORDS", "100000"))
CHUNK = 500


def _rules(field: str, value: str) -> list[dict[str, Any]]:
    return [{"field": field, "operator": "equals", "value": value}]


@benchmark(
    "rule-realtime",
    "one changed record: only the segments reading a changed field; <= 2 reads, writes only for changed memberships",
)
def rule_realtime(opts: Options) -> dict[str, Any]:
    org = ORG["org_id"]
    pid = "p-bench0001"
    with function_env(), moto_in_process(), DynamoCalls() as counted:
        core.reset_queues()
        specs = [
            (f"rule {i}", _rules("tier", f"t{i}") if i < READERS else _rules(f"f{i % 97}", f"v{i}"))
            for i in range(SEGMENTS)
        ]
        ids = core.create_rule_segments(org, ORG["bucket"], specs)
        rules_of = {sid: rules for sid, (_, rules) in zip(ids, specs, strict=True)}
        base = core.person_item(org, pid, {"tier": "none", "score": 50})
        core.put_people(org, [(pid, {"tier": "none", "score": 50})])

        def one(kind: str, n: int) -> tuple[float, list[Any], dict[str, Any]]:
            old = {**base, "tier": f"none{n}"}
            new = {**base, "tier": f"none{n + 1}"}
            counted.clear()
            start = time.perf_counter()
            if kind == "index":
                out = core.reevaluate(org, pid, old, new, f"chg-{n}")
            else:
                out = core.reevaluate_all(org, pid, new, ids)
            return time.perf_counter() - start, list(counted.calls), out

        for kind in ("index", "all"):  # warm-up: compile and cache every segment's rules
            one(kind, 0)
        times: dict[str, list[float]] = {"index": [], "all": []}
        calls: dict[str, list[Any]] = {}
        outs: dict[str, dict[str, Any]] = {}
        for n in range(1, SAMPLES + 1):
            for kind in ("index", "all"):
                took, calls[kind], outs[kind] = one(kind, n)
                times[kind].append(took)
        # evaluation alone: the compiled rules of the segments each path evaluates
        record = {k: v for k, v in base.items() if k not in ("pk", "sk")}
        predicates = {sid: core.compiled(org, sid, rules_of[sid]) for sid in ids}
        eval_times: dict[str, list[float]] = {"index": [], "all": []}
        for _ in range(SAMPLES):
            for kind, chosen in (("index", ids[:READERS]), ("all", ids)):
                start = time.perf_counter()
                for sid in chosen:
                    predicates[sid](record)
                eval_times[kind].append(time.perf_counter() - start)
        # a change that moves the record into one segment: its writes
        counted.clear()
        moved = core.reevaluate(org, pid, {**base, "tier": "none"}, {**base, "tier": "t3"}, "chg-move")
        move_calls = [c.operation for c in counted.calls]
        # a new record, with NEGATIVE more segments whose rules a record lacking their field matches
        negative = core.create_rule_segments(
            org,
            ORG["bucket"],
            [(f"not {i}", [{"field": f"n{i}", "operator": "not_equal_to", "value": "x"}]) for i in range(NEGATIVE)],
        )
        newcomer = "p-bench0002"
        counted.clear()
        created = core.reevaluate(
            org, newcomer, {}, core.person_item(org, newcomer, {"tier": "none", "score": 50}), "chg-new", created=True
        )
        new_calls = [c.operation for c in counted.calls]

    med = {k: statistics.median(v) for k, v in times.items()}
    emed = {k: statistics.median(v) for k, v in eval_times.items()}
    by_op = {k: _ops(v) for k, v in calls.items()}
    reads_index = sum(1 for c in calls["index"] if not c.is_write)
    say(
        f"(a) one changed record, {SEGMENTS:,} dynamic segments, {READERS} read the changed field "
        f"(in-process moto, median of {SAMPLES})"
    )
    evaluated = {k: v["segments_evaluated"] for k, v in outs.items()}
    say(f"    segments evaluated:  index {evaluated['index']}, all {evaluated['all']}")
    say(f"    DynamoDB calls:      index {by_op['index']}, all {by_op['all']}")
    say(
        f"    evaluation only:     index {emed['index'] * 1e6:.0f} us, all {emed['all'] * 1e6:.0f} us "
        f"(all / index = {emed['all'] / emed['index']:.0f} x)"
    )
    say(
        f"    whole path:          index {med['index'] * 1e3:.2f} ms, all {med['all'] * 1e3:.2f} ms "
        f"(all / index = {med['all'] / med['index']:.1f} x)"
    )
    say(f"    record joins 1 segment: {dict(_count(move_calls))} (added to {len(moved['added'])})")
    say(
        f"    new record ({SEGMENTS + NEGATIVE:,} segments, {NEGATIVE} of them matching a record without their "
        f"field): {created['segments_evaluated']} evaluated, joins {len(created['added'])}; {dict(_count(new_calls))}"
    )
    new_met = (
        created["segments_evaluated"] == READERS + NEGATIVE
        and sorted(created["added"]) == sorted(negative)
        and new_calls.count("BatchGetItem") == 2
    )
    met = reads_index <= 2 and outs["index"]["segments_evaluated"] == READERS and new_met
    say(f"    target <= 2 reads, only segments whose verdict can change: {'met' if met else 'NOT met'}")
    return {
        "segments_evaluated": {k: v["segments_evaluated"] for k, v in outs.items()},
        "calls": by_op,
        "evaluation_us": {k: v * 1e6 for k, v in emed.items()},
        "path_ms": {k: v * 1e3 for k, v in med.items()},
        "move_calls": dict(_count(move_calls)),
        "new_record": {
            "segments_evaluated": created["segments_evaluated"],
            "joined": len(created["added"]),
            "calls": dict(_count(new_calls)),
        },
        "met": met,
    }


def _ops(calls: list[Any]) -> dict[str, int]:
    return dict(_count([c.operation for c in calls]))


def _count(names: list[str]) -> list[tuple[str, int]]:
    out: dict[str, int] = {}
    for name in names:
        out[name] = out.get(name, 0) + 1
    return sorted(out.items())


@benchmark(
    "rule-rebuild",
    "rebuild over 100,000 records: records/s against a plain read of them; a killed chunk "
    "redone with nothing doubled or missed",
)
def rule_rebuild(opts: Options) -> dict[str, Any]:
    import boto3

    org = ORG["org_id"]
    n = REBUILD_RECORDS
    results: dict[str, Any] = {"records": n}
    with function_env({"REBUILD_CHUNK_SIZE": str(CHUNK)}), moto_in_process():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="RebuildQueue")["QueueUrl"]
        os.environ["REBUILD_QUEUE_URL"] = url
        core.reset_queues()
        start = time.perf_counter()
        records = [(f"p-{i:07d}", {"tier": "gold" if i % 3 == 0 else "silver", "score": i % 100}) for i in range(n)]
        for at in range(0, n, 5_000):
            core.put_people(org, records[at : at + 5_000])
        say(f"(b) seeded {n:,} person records in {time.perf_counter() - start:.1f} s")
        expected = sum(1 for _, a in records if a["tier"] == "gold")

        start = time.perf_counter()
        assert core.people_scan(org, CHUNK) == n
        scan = time.perf_counter() - start

        handler = load_handler("RebuildFunction")
        runs = {}
        for label, kill_at in (("rebuild", None), ("rebuild, chunk 7 killed", 7)):
            (sid,) = core.create_rule_segments(org, ORG["bucket"], [(f"gold {label}", _rules("tier", "gold"))])
            undo = core.kill_progress_once(kill_at) if kill_at is not None else None
            start = time.perf_counter()
            core.start_rebuild(org, sid, run=uuid.uuid4().hex[:16])
            chunks, failed = _drain(sqs, url, handler)
            took = time.perf_counter() - start
            if undo:
                undo()
            seg = core.segment_record(org, sid) or {}
            progress = seg.get("build_progress") or {}
            runs[label] = {
                "seconds": took,
                "chunks": chunks,
                "failed deliveries": failed,
                "scanned": progress.get("scanned"),
                "added": progress.get("added"),
                "current_size": seg.get("current_size"),
                "build_state": seg.get("build_state"),
            }
    say(f"    plain paged read of {n:,} records: {scan:.1f} s ({n / scan:,.0f} records/s)")
    for label, r in runs.items():
        exact = r["scanned"] == n and r["added"] == expected == r["current_size"] and r["build_state"] == "ready"
        say(
            f"    {label}: {r['seconds']:.1f} s, {n / r['seconds']:,.0f} records/s "
            f"({r['seconds'] / scan:.1f} x the plain read), {r['chunks']} chunks, "
            f"{r['failed deliveries']} failed deliveries; scanned {r['scanned']:,}, added {r['added']:,}, "
            f"size {r['current_size']:,} (expected {expected:,}), {r['build_state']}: "
            f"{'exact' if exact else 'NOT exact'}"
        )
        r["exact"] = exact
    results |= {"plain_read_seconds": scan, "expected_members": expected, "runs": runs}
    return results


def _drain(sqs: Any, url: str, handler: Any) -> tuple[int, int]:
    """Run RebuildFunction on every message until the queue is empty; a failed message is
    delivered again (receive count 2), as SQS would after the visibility timeout."""
    chunks = failed = 0
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        if not got:
            return chunks, failed
        message = got[0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        for receive in (1, 2):
            event = {
                "Records": [
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": "x",
                        "body": message["Body"],
                        "attributes": {"ApproximateReceiveCount": str(receive)},
                        "messageAttributes": {},
                        "md5OfBody": "",
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RebuildQueue",
                        "awsRegion": "us-east-1",
                    }
                ]
            }
            if not invoke(handler, event)["batchItemFailures"]:
                break
            failed += 1
        chunks += 1
