"""`environments`: the local stack with execution environments as threads of one process (today)
against each environment a process of its own (`process_env.ProcessEnvironment`, started by
`spawn` or by a `forkserver` that imported the libraries once), on the template's functions
(docs/performance.md, "Execution environments"; docs/decisions.md, "Execution environments:
threads or processes").

Each run is a fresh `python -m tools.bench.environments --variant V` process: it starts the whole
stack (moto, the template's resources, every function warmed once, HTTP, pollers) on free
ports, then sends requests over HTTP with the demo key, and prints its figures as JSON. Start
time is measured by the parent, from launching the process to the stack's first line: what a
developer waits for after `python -m tools.local_stack`. The variants alternate within each
round, so a busy machine weighs on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess  # nosec B404  # fixed argv below
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tools import cfn
from tools.bench.harness import ROOT, VENV_PY, Options, benchmark, say

VARIANTS = ("threads", "spawn", "forkserver")
SEQUENTIAL = 60  # requests of each kind, one at a time, on warm environments
INVOCATIONS = 200  # direct invocations of a function, through the runtime only
BURST = 16  # concurrent reads: the first burst creates environments (cold starts), the second reuses them
# What the forkserver imports once before forking environments: what every handler imports.
FORKSERVER_PRELOAD = [
    "boto3",
    "botocore.session",
    "pydantic",
    "aws_lambda_powertools.event_handler.api_gateway",
    "aws_lambda_powertools.utilities.batch",
    "segments.observability",
    "segments.surfaces.app",
    "segments.surfaces.minerva",
    "segments.surfaces.sheep",
    "segments.usecases.segments",
]


# ------------------------------------------------------------------ one run (the child process)


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size (pages shared between processes counted once, split among them) of
    a process and all its descendants (Linux /proc), in MB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total / 1024


FAILED: list[str] = []  # requests answered with another status than 200 (reported, not fatal)


class _StackErrors(logging.Handler):
    """The local stack's error lines (a function that raised: why a request got a 500)."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = record.getMessage().strip().splitlines()
        FAILED.append(f"stack: {lines[0][:100]} ... {lines[-1][:200]}")


def _request(url: str, key: str, body: dict[str, Any] | None = None) -> float:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"x-api-key": key, "content-type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:  # nosec B310  # an http:// URL of our own local server
            reply.read()
    except urllib.error.HTTPError as exc:
        FAILED.append(f"{url}: {exc.code} {exc.read()[:200]!r}")
    return (time.perf_counter() - started) * 1000


def _burst(url: str, key: str) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        list(pool.map(lambda _: _request(url, key), range(BURST)))
    return (time.perf_counter() - started) * 1000


def _bare_invocations(runtime: Any) -> list[float]:
    """The runtime's own cost: a function invoked directly (no gateway, no HTTP) with an event
    it refuses before any AWS call (no authorizer context: 401)."""
    event = {
        "resource": "/v2/segments",
        "path": "/v2/segments",
        "httpMethod": "GET",
        "headers": {},
        "requestContext": {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "resourcePath": "/v2/segments"},
        "body": None,
        "isBase64Encoded": False,
    }
    timings = []
    for _ in range(INVOCATIONS):
        started = time.perf_counter()
        result = runtime.invoke("SegmentQueryFunction", event)
        timings.append((time.perf_counter() - started) * 1000)
        if result.get("statusCode") != 401:
            FAILED.append(f"bare invocation: {result.get('statusCode')}")
    return timings


def run(variant: str) -> dict[str, Any]:
    """Start the stack with the variant's environments, measure, stop; the figures as a dict."""
    from tools.local_stack import runtime
    from tools.local_stack.stack import LocalStack

    if variant != "threads":
        from tools.bench import process_env

        process_env.START_METHOD = variant
        process_env.PRELOAD = FORKSERVER_PRELOAD if variant == "forkserver" else []
        runtime.Environment = process_env.ProcessEnvironment  # type: ignore[misc,assignment]
    errors = _StackErrors(level=logging.ERROR)
    logging.getLogger("local_stack").addHandler(errors)
    started = time.perf_counter()
    stack = LocalStack(port=0, moto_port=0)
    info = stack.start()
    start_ms = (time.perf_counter() - started) * 1000
    print(json.dumps({"started": True}), flush=True)  # the parent's clock stops here
    assert info.demo_key
    try:
        reads = f"{info.api_url}/v2/segments"
        creates = f"{info.api_url}/v2/segments/create"
        _request(reads, info.demo_key)  # the authorizer's first call (then cached, as API Gateway does)
        read_ms = [_request(reads, info.demo_key) for _ in range(SEQUENTIAL)]
        create_ms = [_request(creates, info.demo_key, {"name": f"bench {variant} {i}"}) for i in range(SEQUENTIAL)]
        assert stack.runtime is not None
        bare_ms = _bare_invocations(stack.runtime)
        cold_burst = _burst(reads, info.demo_key)
        warm_burst = _burst(reads, info.demo_key)
        functions = cfn.resources_of(stack.template, cfn.SERVERLESS_FUNCTION)
        environments = sum(stack.runtime.pool(f).size for f in functions)
        pss = _tree_pss_mb(os.getpid())
    finally:
        stack.stop()
    return {
        "variant": variant,
        "stack_start_ms": start_ms,
        "bare_invoke_ms": statistics.median(bare_ms),
        "read_ms": statistics.median(read_ms),
        "create_ms": statistics.median(create_ms),
        "cold_burst_ms": cold_burst,
        "warm_burst_ms": warm_burst,
        "environments": environments,
        "pss_mb": pss,
        "failed": len(FAILED),
        "failures": sorted(set(FAILED))[:4],
    }


# ------------------------------------------------------------------ the benchmark (the parent)


def _one_run(variant: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "core")])}
    launched = time.perf_counter()
    proc = subprocess.Popen(  # nosec B603  # the venv's python, fixed argv
        [str(VENV_PY), "-m", "tools.bench.environments", "--variant", variant],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    errors: list[str] = []
    try:
        for line in proc.stdout:  # the functions' own log lines and EMF blobs are skipped
            if line.startswith('{"started"'):
                result["launch_to_ready_ms"] = (time.perf_counter() - launched) * 1000
            elif line.startswith('{"variant"'):
                result.update(json.loads(line))
            elif '"level":"ERROR"' in line:  # a function's own error line: why it answered 500
                errors.append(line.strip()[:400])
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    if "variant" not in result:
        raise RuntimeError(f"{variant}: the run printed no figures (exit {proc.returncode})")
    result["failures"] = [*result["failures"], *errors[:2]]
    return result


FIGURES = (
    ("launch_to_ready_ms", "launch to ready (ms)"),
    ("stack_start_ms", "  of which LocalStack.start() (ms)"),
    ("bare_invoke_ms", "one invocation, runtime only, median (ms)"),
    ("read_ms", "GET /v2/segments, median (ms)"),
    ("create_ms", "POST /v2/segments/create, median (ms)"),
    ("cold_burst_ms", f"{BURST} concurrent GETs, new environments (ms)"),
    ("warm_burst_ms", f"{BURST} concurrent GETs, warm environments (ms)"),
    ("environments", "environments at the end"),
    ("pss_mb", "memory (PSS), process tree (MB)"),
    ("failed", "requests not answered 200"),
)


@benchmark(
    "environments",
    "processes (one per execution environment) start the stack no slower than threads (ratio <= 1.0) "
    "and add little per request",
)
def environments(opts: Options) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for round_ in range(opts.runs):
        for variant in VARIANTS:
            runs[variant].append(_one_run(variant))
            if opts.verbose:
                say(f"  round {round_ + 1} {variant}: {runs[variant][-1]}")
    medians = {v: {key: statistics.median(r[key] for r in runs[v]) for key, _ in FIGURES} for v in VARIANTS}
    say(f"  medians of {opts.runs} runs per variant (a fresh process each); ratio = variant / threads")
    say(f"  {'':46} {'threads':>9} {'spawn':>9} {'ratio':>6} {'forkserver':>10} {'ratio':>6}")
    for key, label in FIGURES:
        base = medians["threads"][key]
        cells = [f"{base:9.1f}"]
        for variant in VARIANTS[1:]:
            value = medians[variant][key]
            ratio = f"{value / base:6.2f}" if base else " " * 6
            cells.append(f"{value:{9 if variant == 'spawn' else 10}.1f} {ratio}")
        say(f"  {label:46} {' '.join(cells)}")
    for variant in VARIANTS:
        for failure in {f for r in runs[variant] for f in r["failures"]}:
            say(f"  {variant}: not 200: {failure}")
    return {"runs": opts.runs, "medians": medians}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.environments", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.variant)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
