"""`members-speed`: one add of 10,000 new PIDs through AddMembersFunction against a local moto
server, against one PutItem per PID on the same server in the same run (docs/performance.md,
"Members")."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tools.bench import core
from tools.bench.harness import ORG, Options, Rows, add_members, benchmark, function_env, new_segment, pids, say
from tools.bench.moto import moto_server


def _baseline(segment_id: str, members: list[str]) -> None:
    """One PutItem per PID, the same member items our add writes, with a plain client."""
    import boto3

    client = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    at = core.now_iso()
    for pid in members:
        client.put_item(TableName=core.table_name(), Item=core.new_member_item(ORG["org_id"], segment_id, pid, at))


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def speed_once(*, own_process: bool) -> tuple[float, float]:
    """Seconds of our add and of the baseline, on one fresh server."""
    with function_env(), moto_server(own_process=own_process):
        ours_segment, base_segment = new_segment("bench speed"), new_segment("bench baseline")
        add_members(new_segment("warm-up"), pids(50))  # import and connect before timing
        ours = _timed(lambda: add_members(ours_segment, pids()))
        baseline = _timed(lambda: _baseline(base_segment, pids()))
    return ours, baseline


def measure(runs: int = 1) -> Rows:
    """10,000 new PIDs through AddMembersFunction vs one PutItem per PID, against a local moto server.
    With runs > 1, each setup is measured that many times and the median ratio kept."""
    say("(b) add 10,000 new PIDs through a local moto server vs one PutItem per PID (same run)")
    rows: Rows = []
    for own_process, label in ((True, "server in its own process"), (False, "server thread in this process")):
        results = []
        for _ in range(max(1, runs)):
            ours, baseline = speed_once(own_process=own_process)
            results.append((baseline / ours, ours, baseline))
            say(f"    {label:32} ours {ours:6.2f} s   baseline {baseline:6.2f} s   {baseline / ours:5.1f} x")
        ratio, ours, baseline = sorted(results)[len(results) // 2]
        say(f"    {label:32} median {ratio:.1f} x (target >= 10 x: {'met' if ratio >= 10 else 'NOT met'})")
        every = ", ".join(f"{r:.1f}" for r, _, _ in results)
        rows += [
            (f"speed ({label}): add 10,000 PIDs", f"{ours:.2f} s"),
            (f"speed ({label}): 10,000 PutItem", f"{baseline:.2f} s"),
            (f"speed ({label}): ratio", f"{ratio:.1f} x" + (f" (median of {every})" if len(results) > 1 else "")),
        ]
    return rows


@benchmark("members-speed", "add 10,000 PIDs via a local moto server: >= 10x one PutItem per PID")
def members_speed(opts: Options) -> dict[str, str]:
    # One run per setup: `--runs` counts cold-import processes; `python -m tools.bench.members_doc
    # --runs N` takes medians of this one.
    return dict(measure())
