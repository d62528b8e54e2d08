"""What SnapStart leaves a new execution environment to pay, next to what a cold start pays.

Each sample is a fresh `.venv/bin/python` process with the create function's directory and the
core on its path and the functions' environment (the source tree, not the `sam build` artifact:
this compares two phases of one process, not artifacts). It times:

- *cold start*: `import handler`, then the first DynamoDB client (`segments.aws.dynamodb()`),
  i.e. what an environment pays before its first DynamoDB call without SnapStart;
- *after restore*: in the same process, `aws.prime()` (what runs before the snapshot), then the
  timed part: `aws.after_restore()` and the first DynamoDB client again, i.e. what a restored
  environment runs before that call. Lambda's own restore (loading the snapshot, `Restore
  Duration`) is not measurable here and comes on top.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess  # nosec B404  # fixed argv below
import textwrap
from typing import Any

from tools import cfn
from tools.bench.harness import FUNCTION_ENV, ROOT, TEMPLATE, VENV_PY, Options, benchmark, say

FUNCTION = "CreateSegmentFunction"
PROBE = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    import handler
    from segments import aws
    aws.dynamodb()
    t1 = time.perf_counter()
    aws.reset()
    aws.prime()
    t2 = time.perf_counter()
    aws.after_restore()
    aws.dynamodb()
    t3 = time.perf_counter()
    print(json.dumps({"cold": t1 - t0, "restored": t3 - t2}))
    """
)


def _sample(function_dir: str) -> dict[str, float]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([str(ROOT / function_dir), str(ROOT / "layers" / "core")]),
        **FUNCTION_ENV,
    }
    proc = subprocess.run(  # nosec B603  # the venv's python, fixed argv
        [str(VENV_PY), "-c", PROBE], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@benchmark("snapstart", "after a restore, the hook and first client: a small share of a cold start's import")
def snapstart(opts: Options) -> dict[str, Any]:
    function_dir = str(cfn.function(cfn.load_template(TEMPLATE), FUNCTION).code_uri)
    _sample(function_dir)  # warm-up: page cache and .pyc files
    samples = [_sample(function_dir) for _ in range(opts.runs)]
    cold = statistics.median(s["cold"] for s in samples)
    restored = statistics.median(s["restored"] for s in samples)
    say(f"{FUNCTION}, median of {opts.runs} processes:")
    say(f"  cold start: import handler + first DynamoDB client   {cold * 1000:8.1f} ms   1.00 x")
    say(f"  after restore: hook + first DynamoDB client          {restored * 1000:8.1f} ms   {restored / cold:.3f} x")
    return {"function": FUNCTION, "cold_ms": cold * 1000, "restored_ms": restored * 1000, "ratio": restored / cold}
