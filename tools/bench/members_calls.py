"""`members-calls`: the DynamoDB calls of one add of 10,000 new PIDs through AddMembersFunction,
by operation, under in-process moto (docs/performance.md, "Members")."""

from __future__ import annotations

import collections

from tools.bench.calls import DynamoCalls
from tools.bench.harness import N_PIDS, Options, Rows, add_members, benchmark, function_env, new_segment, pids, say
from tools.bench.moto import moto_in_process


def measure() -> Rows:
    """DynamoDB calls of one add of 10,000 new PIDs through AddMembersFunction, by operation."""
    with function_env(), moto_in_process(), DynamoCalls() as counted:
        segment_id = new_segment("bench calls")
        counted.clear()
        results = add_members(segment_id, pids())
        by_op = collections.Counter(c.operation for c in counted.calls)
        counted.clear()
        again = add_members(segment_id, pids())
        by_op_again = collections.Counter(c.operation for c in counted.calls)
    assert results["n_added"] == N_PIDS and again["n_redundant_additions"] == N_PIDS
    others = sum(n for op, n in by_op.items() if op not in ("BatchGetItem", "BatchWriteItem"))
    met = by_op["BatchGetItem"] <= 100 and by_op["BatchWriteItem"] <= 400 and others <= 5
    say("(a) DynamoDB calls, add 10,000 new PIDs through AddMembersFunction (in-process moto)")
    say(f"    new PIDs:       {dict(sorted(by_op.items()))}")
    say(f"    all redundant:  {dict(sorted(by_op_again.items()))}")
    verdict = (
        "met"
        if met
        else (
            "met but for the ledger batch"
            if by_op["BatchWriteItem"] == 401 and by_op["BatchGetItem"] <= 100
            else "NOT met"
        )
    )
    say(f"    target <= 100 BatchGetItem + 400 BatchWriteItem + O(1): {verdict}")
    return [
        ("calls: BatchGetItem, 10,000 new PIDs", str(by_op["BatchGetItem"])),
        (
            "calls: BatchWriteItem, 10,000 new PIDs",
            f"{by_op['BatchWriteItem']} (400 of members + {by_op['BatchWriteItem'] - 400} of ledger)",
        ),
        (
            "calls: others, 10,000 new PIDs",
            ", ".join(f"{n} {op}" for op, n in sorted(by_op.items()) if op not in ("BatchGetItem", "BatchWriteItem")),
        ),
        ("calls: 10,000 redundant PIDs", ", ".join(f"{n} {op}" for op, n in sorted(by_op_again.items()))),
        ("calls: target", verdict),
    ]


@benchmark("members-calls", "add 10,000 new PIDs: <= 100 batch reads + 400 batch writes + O(1)")
def members_calls(opts: Options) -> dict[str, str]:
    return dict(measure())
