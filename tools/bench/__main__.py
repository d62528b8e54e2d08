"""Performance figures for docs/performance.md, as ratios against a baseline measured in the same run.

    make bench                                   # = python -m tools.bench
    python -m tools.bench --no-build             # reuse .aws-sam/build as it is
    python -m tools.bench cold-import --runs 9   # one benchmark, more samples
    python -m tools.bench --list

Nothing here asserts: each benchmark prints its figures next to its target, and the run exits 0
unless a benchmark could not run at all. Wall-clock figures are only compared with a baseline
taken in the same run on the same machine; absolute milliseconds are printed for context.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from tools.bench import (
    cold_import,
    create_calls,
    environments,
    exports,
    mailchimp,
    members_calls,
    members_reads,
    members_speed,
    rule_segments,
    rules_eval,
    signals_ingest,
    signals_late_joiners,
    signals_reads,
    snapstart,
    stream_readers,
    webhooks,
)
from tools.bench.harness import BENCHMARKS, Benchmark, Options, commit, machine, say

# Importing a benchmark module registers its benchmarks; this is the order of --list and of a full run.
ORDER = (
    cold_import,
    snapstart,
    create_calls,
    members_calls,
    members_speed,
    members_reads,
    signals_ingest,
    signals_reads,
    signals_late_joiners,
    rules_eval,
    rule_segments,
    exports,
    mailchimp,
    stream_readers,
    environments,
    webhooks,
)


def benchmarks() -> dict[str, Benchmark]:
    """The registry, in the order of ORDER (whatever order the modules were imported in)."""
    rank = {module.__name__: i for i, module in enumerate(ORDER)}
    return {b.name: b for b in sorted(BENCHMARKS.values(), key=lambda b: rank.get(b.fn.__module__, len(rank)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their targets")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per import figure (median)")
    parser.add_argument("--no-build", action="store_true", help="never run sam build; use .aws-sam/build")
    parser.add_argument("--rebuild", action="store_true", help="run sam build even if the build is fresh")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    # sizes of the `webhooks` benchmark (defaults in tools/bench/webhooks.py)
    parser.add_argument("--events", type=int, help="webhooks: segment events put on the bus")
    parser.add_argument("--endpoints", type=int, help="webhooks: endpoints, spread over --orgs")
    parser.add_argument("--orgs", type=int, help="webhooks: orgs holding the endpoints")
    parser.add_argument(
        "--export-sizes", help="members of the exports benchmark's segments, comma-separated (default 10000,100000)"
    )
    args = parser.parse_args(argv)

    registry = benchmarks()
    if args.list:
        for b in registry.values():
            say(f"{b.name:14} {'(pending) ' if b.pending else ''}{b.target}")
        return 0
    unknown = [n for n in args.names if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; see --list")
    if args.export_sizes:
        os.environ["BENCH_EXPORT_SIZES"] = args.export_sizes
    opts = Options(runs=max(1, args.runs), no_build=args.no_build, rebuild=args.rebuild, verbose=args.verbose)
    opts.sizes = {"events": args.events, "endpoints": args.endpoints, "orgs": args.orgs}

    say(f"# Segments benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}")
    say(f"# machine: {machine()}")
    failed = []
    for name in args.names or list(registry):
        b = registry[name]
        say()
        say(f"== {b.name}: target {b.target}")
        try:
            opts.results[name] = b.fn(opts)
        except Exception as exc:  # report and go on with the next benchmark
            failed.append(name)
            say(f"  could not run: {type(exc).__name__}: {exc}")
    if args.json:
        args.json.write_text(json.dumps(opts.results, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
