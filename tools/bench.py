"""Performance figures for docs/performance.md, as ratios against a baseline measured in the same run.

    make bench                                   # = python -m tools.bench
    python -m tools.bench --no-build             # reuse .aws-sam/build as it is
    python -m tools.bench cold-import --runs 9   # one benchmark, more samples
    python -m tools.bench --list

Nothing here asserts: each benchmark prints its figures next to its target, and the run exits 0
unless a benchmark could not run at all. Wall-clock figures are only compared with a baseline
taken in the same run on the same machine; absolute milliseconds are printed for context.

Benchmarks live in a registry (`BENCHMARKS`, filled by the `@benchmark` decorator); the members
benchmarks live in tools/bench_members.py and are registered here.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import datetime as dt
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tools import cfn
from tools.local_stack import lambda_context

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
BUILD_DIR = ROOT / ".aws-sam" / "build"
BENCH_DIR = ROOT / ".aws-sam" / "bench"
VENV_PY = ROOT / ".venv" / "bin" / "python"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
EVENTS = ROOT / "events"
REGION = "us-east-1"

# What the functions see (template.yaml Globals), with the physical table names the tests use.
FUNCTION_ENV = {
    "TABLE_NAME": "SegmentsTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    "MAX_PIDS_PER_REQUEST": "10000",
    "PID_VALIDATION": "format",
    "POWERTOOLS_SERVICE_NAME": "segments",
    "POWERTOOLS_METRICS_NAMESPACE": "Segments",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOG_LEVEL": "WARNING",
    # Lambda puts the role's credentials and the region in the environment; so do we (dummies).
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# ------------------------------------------------------------------ registry


@dataclass
class Options:
    runs: int
    no_build: bool
    rebuild: bool
    verbose: bool
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Benchmark:
    name: str
    target: str
    fn: Callable[[Options], Any]
    pending: bool = False


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, target: str, *, pending: bool = False) -> Callable[[Callable[[Options], Any]], Any]:
    """Register a benchmark: `fn(opts)` prints its figures and returns a JSON-able summary."""

    def register(fn: Callable[[Options], Any]) -> Callable[[Options], Any]:
        BENCHMARKS[name] = Benchmark(name, target, fn, pending)
        return fn

    return register


def say(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ template


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfn.resources_of(template, "AWS::Serverless::Function")


# ------------------------------------------------------------------ sam build


def _newest_source_mtime() -> float:
    newest = TEMPLATE.stat().st_mtime
    for base in (ROOT / "layers", ROOT / "functions"):
        for path in base.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def sam_env() -> dict[str, str]:
    """SAM from its own venv, with the project venv first so that `python3.13` resolves."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(SAM.parent), env.get("PATH", "")])
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def ensure_build(opts: Options) -> Path:
    built = BUILD_DIR / "template.yaml"
    fresh = built.exists() and built.stat().st_mtime >= _newest_source_mtime()
    if opts.no_build:
        if not built.exists():
            raise SystemExit("--no-build: .aws-sam/build is missing; run `make build` first")
        if not fresh:
            say("warning: .aws-sam/build is older than the sources (--no-build: measuring it anyway)")
        return built
    if fresh and not opts.rebuild:
        say("sam build: .aws-sam/build is newer than the sources, reusing it")
        return built
    if not SAM.exists():
        raise SystemExit(f"{SAM} is missing; run `make sam-venv`")
    say("sam build ...")
    proc = subprocess.run([str(SAM), "build"], cwd=ROOT, env=sam_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        say(proc.stdout[-4000:])
        say(proc.stderr[-4000:])
        raise SystemExit("sam build failed")
    return built


# ------------------------------------------------------------------ a: cold import


ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}


def _elf_machine(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(20)
    if head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    return ELF_MACHINES.get(int.from_bytes(head[18:20], order), "other")


def _host_machine() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())


def _record_files(dist_info: Path) -> list[str]:
    record = dist_info / "RECORD"
    return [line.split(",")[0] for line in record.read_text().splitlines() if line.strip()]


def _dist_name_version(dist_info: Path) -> tuple[str, str]:
    name, version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)
    return name, version


def host_layer(layer_python: Path, dest: Path) -> tuple[Path, list[str]]:
    """A copy of the built layer runnable here: every file as built, except compiled modules of
    another architecture, swapped for the host wheel of the same distribution and version."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(layer_python, dest, ignore=shutil.ignore_patterns("__pycache__"))
    host = _host_machine()
    foreign_files = {p.relative_to(dest).as_posix() for p in dest.rglob("*.so") if _elf_machine(p) not in (None, host)}
    if not foreign_files:
        return dest, []
    swapped = []
    for dist_info in sorted(dest.glob("*.dist-info")):
        files = _record_files(dist_info)
        if not foreign_files.intersection(files):
            continue
        name, version = _dist_name_version(dist_info)
        wheel_dir = BENCH_DIR / "host-wheels" / f"{name}-{version}"
        if not wheel_dir.exists():
            subprocess.run(
                [
                    str(VENV_PY),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--target",
                    str(wheel_dir),
                    f"{name}=={version}",
                ],
                check=True,
                capture_output=True,
            )
        for rel in files:  # remove the foreign build of this distribution
            target = dest / rel
            if not rel.startswith("..") and target.is_file():
                target.unlink()
        for src in wheel_dir.rglob("*"):
            if src.is_file() and "__pycache__" not in src.parts and src.parent != wheel_dir / "bin":
                out = dest / src.relative_to(wheel_dir)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
        swapped.append(f"{name}=={version}")
    return dest, swapped


PROBE = textwrap.dedent(
    """
    import sys, time, json
    t0 = time.perf_counter()
    import {module}
    t1 = time.perf_counter()
    top = {{m.split(".")[0] for m in sys.modules}}
    print(json.dumps({{"seconds": t1 - t0,
                       "modules": sorted(m for m in top if m not in sys.stdlib_module_names
                                         and not m.startswith("_") and m != "handler")}}))
    """
)


def _probe(module: str, pythonpath: list[Path], *, bytecode: bool) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        **FUNCTION_ENV,
    }
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    # -S: no site-packages of the dev venv, so every import resolves from the artifact (as on
    # Lambda, where sys.path is the function dir, then the layer, then the runtime).
    proc = subprocess.run(
        [str(VENV_PY), "-S", "-c", PROBE.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=BENCH_DIR,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@benchmark("cold-import", "import of a handler <= 1.4 x `import boto3`, same run (built artifact)")
def cold_import(opts: Options) -> dict[str, Any]:
    built_template = ensure_build(opts)
    template = cfn.load_template(built_template)
    layers = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"]
    if len(layers) != 1:
        raise SystemExit(f"expected one layer in the built template, found {layers}")
    layer_src = BUILD_DIR / template["Resources"][layers[0]]["Properties"]["ContentUri"] / "python"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    layer, swapped = host_layer(layer_src, BENCH_DIR / "layer" / "python")
    arches = collections.Counter(_elf_machine(p) for p in layer_src.rglob("*.so"))
    built_for = ", ".join(f"{n} {arch}" for arch, n in sorted(arches.items(), key=str)) or "none"
    say(f"layer: {layer_src.relative_to(ROOT)} (compiled modules: {built_for}) copied to {layer.relative_to(ROOT)}")
    if swapped:
        say(f"  compiled modules swapped for {_host_machine()} builds of the same versions: {', '.join(swapped)}")

    fn_dirs: dict[str, Path | None] = {}
    for name, props in sorted(functions_of(template).items()):
        src = BUILD_DIR / props["CodeUri"]
        if not (src / "handler.py").is_file():
            fn_dirs[name] = None
            continue
        dest = BENCH_DIR / "functions" / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        fn_dirs[name] = dest

    subjects: list[tuple[str, str, list[Path]]] = [("import boto3 (baseline)", "boto3", [layer])]
    subjects += [(name, "handler", [d, layer]) for name, d in fn_dirs.items() if d is not None]

    results: dict[str, dict[str, Any]] = {label: {} for label, _, _ in subjects}
    errors: dict[str, str] = {}
    # "source": no __pycache__ anywhere in the artifact and none written, so every module of the
    # layer and function is compiled at import. That is what a SAM-built zip (no .pyc) costs on
    # Lambda, whose /opt and /var/task are read-only. "pyc": one warm-up run writes __pycache__,
    # then every run loads bytecode: the cost once the layer ships compiled files.
    for mode in ("source", "pyc"):
        bytecode = mode == "pyc"
        for label, module, path in subjects:  # warm-up (page cache; and the .pyc files in "pyc")
            if label in errors:
                continue
            try:
                _probe(module, path, bytecode=bytecode)
            except RuntimeError as exc:
                errors[label] = str(exc)
        samples: dict[str, list[float]] = {label: [] for label, _, _ in subjects}
        modules: dict[str, list[str]] = {}
        for _ in range(opts.runs):  # interleaved, so drift hits every subject alike
            for label, module, path in subjects:
                if label in errors:
                    continue
                out = _probe(module, path, bytecode=bytecode)
                samples[label].append(out["seconds"])
                modules[label] = out["modules"]
        for label, values in samples.items():
            if values:
                results[label][mode] = statistics.median(values)
                results[label]["modules"] = modules[label]

    base = results["import boto3 (baseline)"]
    say()
    say(f"cold import, median of {opts.runs} fresh processes per figure (`python -S`, artifact paths only)")
    say(f"  {'':28} {'from source (.py only)':>26}   {'bytecode cached (.pyc)':>26}")
    verdicts = {}
    for label, _, _ in subjects:
        row = f"  {label:28}"
        if label in errors:
            say(f"{row} error: {errors[label]}")
            continue
        for mode in ("source", "pyc"):
            ratio = results[label][mode] / base[mode]
            results[label][f"{mode}_ratio"] = ratio
            mark = "" if label == "import boto3 (baseline)" else (" ok" if ratio <= 1.4 else " over")
            row += f"   {results[label][mode] * 1000:8.1f} ms {ratio:5.2f}x{mark:5}"
        verdicts[label] = results[label]["pyc_ratio"] <= 1.4
        say(row)
    for name, d in fn_dirs.items():
        if d is None:
            say(f"  {name:28} not measured: no handler.py in the build")
    say("  target: <= 1.40x (ok / over is judged on each column's own baseline)")
    if opts.verbose:
        base_mods = set(base.get("modules", []))
        for label, _, _ in subjects[1:]:
            extra = sorted(set(results[label].get("modules", [])) - base_mods)
            say(f"  {label}: top-level modules beyond boto3's: {', '.join(extra) or '-'}")
    return {
        "layer_swapped": swapped,
        "seconds": {k: {m: v.get(m) for m in ("source", "pyc")} for k, v in results.items()},
        "ratios": {k: {m: v.get(f"{m}_ratio") for m in ("source", "pyc")} for k, v in results.items()},
        "errors": errors,
        "missing_handler": [n for n, d in fn_dirs.items() if d is None],
    }


# ------------------------------------------------------------------ helpers for in-process runs


@contextlib.contextmanager
def function_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """The functions' environment in this process, restored afterwards."""
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(FUNCTION_ENV)
    os.environ.update(extra or {})
    core = str(ROOT / "layers" / "core")
    if core not in sys.path:
        sys.path.insert(0, core)
    _reset_core()
    try:
        yield
    finally:
        _reset_core()
        os.environ.clear()
        os.environ.update(saved)


def _reset_core() -> None:
    """Drop cached clients/settings of the core so a new endpoint or environment takes effect."""
    for module_name in ("segments.storage", "segments.idempotency"):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "reset"):
            module.reset()


_HANDLERS: dict[str, ModuleType] = {}


def load_handler(logical_id: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler callable of a function of template.yaml, imported from functions/<dir>/."""
    props = functions_of(cfn.load_template(TEMPLATE))[logical_id]
    module_name, attr = props["Handler"].rsplit(".", 1)
    path = ROOT / props["CodeUri"] / f"{module_name}.py"
    key = str(path)
    if key not in _HANDLERS:
        unique = "bench_" + re.sub(r"\W", "_", props["CodeUri"].strip("/"))
        spec = importlib.util.spec_from_file_location(unique, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        _HANDLERS[key] = module
    return getattr(_HANDLERS[key], attr)


def invoke(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    """Call a handler quietly (its EMF metrics go to stdout, as on Lambda)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return handler(event, lambda_context("bench"))


@dataclass
class Call:
    operation: str
    tables: list[str]

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

    @property
    def is_write(self) -> bool:
        return self.operation in self.WRITES

    def __str__(self) -> str:
        return f"{self.operation}({', '.join(self.tables)})"


def _tables_in(body: Any) -> list[str]:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return []
    found: list[str] = []
    if "TableName" in params:
        found.append(params["TableName"])
    for key in ("RequestItems",):  # BatchGetItem / BatchWriteItem
        found.extend(params.get(key, {}))
    for item in params.get("TransactItems", []):  # TransactWriteItems / TransactGetItems
        for op in item.values():
            if isinstance(op, dict) and "TableName" in op:
                found.append(op["TableName"])
    return sorted(set(found), key=found.index)


class DynamoCalls:
    """Counts DynamoDB API calls (not HTTP retries) of every client created while active.

    A `before-call.dynamodb` hook goes on each new client's `meta.events`, whichever boto3 or
    botocore session made it (the core's client and the Powertools idempotency client alike).
    Clients must be created inside the block: reset the core's cached client first.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._original: Any = None

    def _hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(Call(model.name, _tables_in(params.get("body"))))

    def __enter__(self) -> DynamoCalls:
        import botocore.session

        original = botocore.session.Session.create_client
        hook = self._hook

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            if client.meta.service_model.service_name == "dynamodb":
                client.meta.events.register("before-call.dynamodb", hook)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import botocore.session

        botocore.session.Session.create_client = self._original  # type: ignore[method-assign]

    def clear(self) -> None:
        self.calls.clear()

    def summary(self) -> str:
        writes = sum(c.is_write for c in self.calls)
        listing = ", ".join(str(c) for c in self.calls) or "none"
        return f"{len(self.calls)} call(s), {writes} write(s): {listing}"


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API proxy event, shaped like `sam local generate-event apigateway aws-proxy`."""
    headers = {"content-type": "application/json", **(headers or {})}
    rid = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": rid,
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer
            or {"principalId": "bench", "org_id": "org-bench", "bucket": "org-bench", "key_id": "bench"},
        },
    }


def event_file(name: str) -> dict[str, Any] | None:
    path = EVENTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@contextlib.contextmanager
def moto_in_process() -> Iterator[Any]:
    """moto's mock_aws with the template's tables; yields a DynamoDB client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        cfn.create_tables(client, cfn.load_template(TEMPLATE))
        yield client


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A local moto server on a free loopback port, the template's tables created in it; the
    functions' AWS_ENDPOINT_URL points at it while the block runs. Yields the endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = url
    _reset_core()
    try:
        cfn.create_tables(boto3.client("dynamodb", region_name=REGION, endpoint_url=url), cfn.load_template(TEMPLATE))
        yield url
    finally:
        server.stop()
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
        _reset_core()


# ------------------------------------------------------------------ b: DynamoDB calls per create


@benchmark("create-calls", "create: 1 DynamoDB write, nothing else (auth cached by the authorizer)")
def create_calls(opts: Options) -> dict[str, Any]:
    source = "events/create_segment.json"
    event = event_file("create_segment.json")
    if event is None:
        source = "built in tools/bench.py (events/create_segment.json is missing)"
        event = api_event("POST", "/v2/segments/create", {"name": "Bench segment", "description": None})
    ctx = event.setdefault("requestContext", {})
    if not (ctx.get("authorizer") or {}).get("org_id"):
        ctx["authorizer"] = {"principalId": "bench", "org_id": "org-bench", "bucket": "org-bench", "key_id": "b"}
        source += " + authorizer context added"
    raw = event.get("body") or "{}"
    encoded = bool(event.get("isBase64Encoded"))
    body = json.loads(base64.b64decode(raw) if encoded else raw)
    headers = dict(event.get("headers") or {})
    plain_headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}

    def variant(name: str, idem: str | None = None) -> dict[str, Any]:
        ev = json.loads(json.dumps(event))
        text = json.dumps({**body, "name": name})
        ev["body"] = base64.b64encode(text.encode()).decode() if encoded else text
        ev["headers"] = {**plain_headers, **({"Idempotency-Key": idem} if idem else {})}
        ev["multiValueHeaders"] = {k: [v] for k, v in ev["headers"].items()}
        ev["requestContext"]["requestId"] = str(uuid.uuid4())
        return ev

    rows: list[tuple[str, int, DynamoCalls]] = []
    with function_env(), moto_in_process():
        with DynamoCalls() as calls:
            handler = load_handler("CreateSegmentFunction")
            first_name = body.get("name") or "Bench segment"
            cases = [
                ("first create (cold container)", variant(first_name)),
                ("second create, new name", variant(f"{first_name} 2")),
                ("same name again (conflict)", variant(first_name)),
                ("with Idempotency-Key (not in target)", variant(f"{first_name} 3", idem=str(uuid.uuid4()))),
            ]
            for label, ev in cases:
                calls.clear()
                result = invoke(handler, ev)
                snapshot = DynamoCalls()
                snapshot.calls = list(calls.calls)
                rows.append((label, result["statusCode"], snapshot))

    say(f"event: {source}")
    for label, status, snap in rows:
        say(f"  {label:38} HTTP {status}  {snap.summary()}")
    first = rows[0][2].calls
    met = rows[0][1] == 200 and len(first) == 1 and first[0].is_write
    say(f"  target: 1 call, a write -> {'met' if met else 'NOT met'}")
    return {label: {"status": status, "calls": [str(c) for c in snap.calls]} for label, status, snap in rows} | {
        "target_met": met
    }


# ================================================================== members benchmarks
# Written in tools/bench_members.py (also runnable alone: `python -m tools.bench_members`, which
# writes the "## Members" section of docs/performance.md). Imported lazily: it imports this module.


def _members(name: str) -> dict[str, str]:
    from tools import bench_members

    return dict(bench_members.BENCHMARKS[name]())


@benchmark("members-calls", "add 10,000 new PIDs: <= 100 batch reads + 400 batch writes + O(1)")
def members_calls(opts: Options) -> dict[str, str]:
    return _members("calls")


@benchmark("members-speed", "add 10,000 PIDs via a local moto server: >= 10x one PutItem per PID")
def members_speed(opts: Options) -> dict[str, str]:
    return _members("speed")


@benchmark("members-reads", "a deep members page by cursor costs the reads of the first page")
def members_reads(opts: Options) -> dict[str, str]:
    return _members("reads")


# ================================================================== end of members benchmarks


def _machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cpu = cpu or platform.processor()
    return f"{os.cpu_count()} cores, {platform.machine()}, {cpu}, Python {platform.python_version()}"


def _commit() -> str:
    proc = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their targets")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per import figure (median)")
    parser.add_argument("--no-build", action="store_true", help="never run sam build; use .aws-sam/build")
    parser.add_argument("--rebuild", action="store_true", help="run sam build even if the build is fresh")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    if args.list:
        for b in BENCHMARKS.values():
            say(f"{b.name:14} {'(pending) ' if b.pending else ''}{b.target}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; see --list")
    opts = Options(runs=max(1, args.runs), no_build=args.no_build, rebuild=args.rebuild, verbose=args.verbose)

    say(f"# Segments benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}")
    say(f"# machine: {_machine()}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        b = BENCHMARKS[name]
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
