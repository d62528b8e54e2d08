"""Members benchmarks alone, their figures written into the "Members" section of docs/performance.md.

DynamoDB calls of a 10,000-PID add, its speed against one PutItem per PID through a local moto
server, and the reads of a first and a deep members page.

    .venv/bin/python -m tools.bench.members_doc              # everything, figures into docs/performance.md
    .venv/bin/python -m tools.bench.members_doc calls reads  # some of it (printed only)
    .venv/bin/python -m tools.bench.members_doc --no-write   # print only
    .venv/bin/python -m tools.bench.members_doc --runs 3     # speed: median of 3 runs per setup

Nothing here asserts; wall-clock figures are ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tools.bench import members_calls, members_reads, members_speed
from tools.bench.harness import ROOT, Rows, commit, machine, say

PERFORMANCE_MD = ROOT / "docs" / "performance.md"
SECTION = "## Members"

# name -> rows of figures; `runs` is the speed benchmark's runs per setup.
MEASURES: dict[str, Callable[[int], Rows]] = {
    "calls": lambda runs: members_calls.measure(),
    "speed": lambda runs: members_speed.measure(runs),
    "reads": lambda runs: members_reads.measure(),
}


def run(names: list[str] | None = None, *, runs: int = 1) -> Rows:
    rows: Rows = []
    for name in names or list(MEASURES):
        rows += MEASURES[name](runs)
    return rows


METHOD = """\
Written by `python -m tools.bench.members_doc` (modules `members_calls`, `members_speed` and
`members_reads` of `tools/bench/`); nothing here is timed by a test. Everything goes through
`AddMembersFunction`'s handler with an API Gateway proxy event (the authorizer's context filled
in), against moto with the tables of `template.yaml`.

- **Calls**: in-process `mock_aws`; every DynamoDB client gets a `before-call` hook
  (`tools.bench.calls.DynamoCalls`), so API calls are counted, not HTTP retries.
- **Speed**: a `moto.server.ThreadedMotoServer` on a free loopback port, `AWS_ENDPOINT_URL`
  pointed at it. Ours: one add of 10,000 new PIDs (after a 50-PID warm-up add). Baseline, same run,
  same server: one `PutItem` per PID of the same member items with a plain boto3 client. Measured
  twice: with the server in its own process (as DynamoDB is another machine) and with the server
  thread in the benchmark's process, where the server and the function share one interpreter lock,
  so the server's work and ours cannot overlap.
- **Reads**: in-process `mock_aws`, a 20,000-member segment, real page size (5,000). An
  `after-call` hook on the core's client records each `Query`; read units are what DynamoDB
  charges for those queries (the evaluated items' sizes per call, rounded up to 4 KB, halved for
  eventually consistent reads), computed from the stored items.

Reading the figures:

- **Calls.** 10,000 member items are exactly 400 full BatchWriteItem calls; the ledger (10 items
  of 1,000 PIDs) needs one more, so the write count is 401, one over the target: the ledger is
  what makes history cost one call instead of another 400.
- **Speed.** What batching saves is the per-request cost (HTTP, request parsing, dispatch:
  most of a PutItem's ~3-4 ms in moto); what it cannot save is moto's per-item cost, which grows
  with the square of an item's attribute count (moto re-measures the item's size on every
  attribute it sets) and dominates our side; a new member item has 8 attributes, keys included
  (the PID, segment and org are not stored again: they are derived from the keys; the person index gsi3 adds
  two while a member is active). With the
  server thread in the benchmark's process, the server and the function also take turns on one
  interpreter lock, so nothing overlaps and the ratio is lower. Single runs on this shared 2-core
  machine vary by a few x from run to run: compare medians (`--runs 3`). The segments table has a
  DynamoDB stream (the outbox of segment events): moto writes a stream record for every item
  put, about 0.1 ms each, which DynamoDB does not charge the writer. Left out of the template,
  the same add takes about 2.7 s here (10 x, as the first measurements before the stream); the
  calls, the 8 attributes of a member item and the read units are the same either way.
- **Reads.** A page reads one page plus one item (to know whether the list goes on); the
  1 MB limit of a Query splits it into two calls. By cursor the Query starts at the previous
  page's last key, so every page costs the first page's reads; by number, page p reads p pages.
"""


def write_doc(rows: Rows, path: Path = PERFORMANCE_MD) -> None:
    """Replace (or append) the `## Members` section of docs/performance.md; the rest is left alone."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    section = (
        f"{SECTION}\n\n{METHOD}\n"
        f"Measured {stamp} on {machine()}, load average {load:.1f}, commit `{commit()}`.\n\n"
        f"| figure | value |\n|---|---|\n{table}\n"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.members_doc", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*MEASURES, []], help="default: all")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {PERFORMANCE_MD.name}")
    parser.add_argument("--runs", type=int, default=1, help="speed: runs per setup (the median ratio is kept)")
    args = parser.parse_args(argv)
    rows = run(args.names or None, runs=max(1, args.runs))
    say()
    for figure, value in rows:
        say(f"{figure:48} {value}")
    if not args.no_write and not args.names:
        write_doc(rows)
        say(f"\nwritten to {PERFORMANCE_MD.relative_to(ROOT)} ({SECTION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
