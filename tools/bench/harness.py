"""What every benchmark shares: the registry (`@benchmark`), options and output, the machine and
commit labels, the functions' environment, moto (in-process and as a server), DynamoDB call
counting, API Gateway events, and loading a function's handler from template.yaml.

The core (`segments.*`) is reached only through `tools.bench.core`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import subprocess  # nosec B404  # fixed argv below
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tools import cfn
from tools.bench import core
from tools.local_stack import lambda_context

ROOT = Path(__file__).resolve().parents[2]
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
    "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105  # moto's dummy credentials
    "AWS_SESSION_TOKEN": "testing",  # nosec B105  # moto's dummy credentials
    "AWS_EC2_METADATA_DISABLED": "true",
}

# The authorizer's context of every benchmark request (an org of its own).
ORG = {"principalId": "bench", "org_id": "org-bench", "bucket": "org-bench", "key_id": "bench"}

Rows = list[tuple[str, str]]  # (figure, value) rows, as the members benchmarks report them


# ------------------------------------------------------------------ registry and output


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


def machine() -> str:
    """The machine the figures were measured on: cores, architecture, CPU model, Python."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cpu = cpu or platform.processor()
    return f"{os.cpu_count()} cores, {platform.machine()}, {cpu}, Python {platform.python_version()}"


def commit() -> str:
    """The commit measured (`git describe --always --dirty`)."""
    proc = subprocess.run(  # nosec B603 B607  # git describe, fixed argv
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


# ------------------------------------------------------------------ template and handlers


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfn.resources_of(template, "AWS::Serverless::Function")


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


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow stdout inside the block: the EMF metrics that handlers and use cases print, as on Lambda."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def invoke(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    """Call a handler quietly."""
    with quiet():
        return handler(event, lambda_context("bench"))


# ------------------------------------------------------------------ environment


@contextlib.contextmanager
def function_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """The functions' environment in this process, restored afterwards."""
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(FUNCTION_ENV)
    os.environ.update(extra or {})
    core.ensure_importable()
    core.reset_core()
    try:
        yield
    finally:
        core.reset_core()
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------------------------ events


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
            "authorizer": authorizer or dict(ORG),
        },
    }


def event_file(name: str) -> dict[str, Any] | None:
    path = EVENTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# ------------------------------------------------------------------ members


N_PIDS = 10_000  # PIDs of one add (MAX_PIDS_PER_REQUEST)


def pids(n: int = N_PIDS, prefix: str = "") -> list[str]:
    return [f"p-{prefix}{i:06d}" for i in range(n)]


def new_segment(name: str) -> str:
    """An empty segment of the benchmarks' org, created through the core; its id."""
    return core.create_segment(ORG["org_id"], ORG["bucket"], name)


def add_members(segment_id: str, members: list[str]) -> dict[str, Any]:
    """Add PIDs through AddMembersFunction's handler; the response's `results`."""
    event = api_event(
        "POST", "/v2/segments/members/add", {"segment_id": segment_id, "minerva_pids": members}, authorizer=ORG
    )
    result = invoke(load_handler("AddMembersFunction"), event)
    if result["statusCode"] != 200:
        raise RuntimeError(f"add answered {result['statusCode']}: {result.get('body')}")
    return json.loads(result["body"])["results"]


# ------------------------------------------------------------------ signals


def sqs_batch(bodies: list[str]) -> dict[str, Any]:
    """An SQS event source batch as Lambda delivers it (the bodies as messages)."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEB" + uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1705314645123",
                    "SenderId": "AIDABENCH",
                    "ApproximateFirstReceiveTimestamp": "1705314645130",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:PersonEventsQueue",
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def stream_inserts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """DynamoDB stream INSERT records of stored items (raw attribute maps), as Lambda delivers them."""
    stream_arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/SegmentsTable/stream/2024-01-15T10:00:00.000"
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1705314645,
                    "Keys": {"pk": item["pk"], "sk": item["sk"]},
                    "SequenceNumber": f"{11100000000000000000000 + n}",
                    "SizeBytes": 1024,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                    "NewImage": item,
                },
                "eventSourceARN": stream_arn,
            }
            for n, item in enumerate(items)
        ]
    }


def person_event(kind: str, pid: str, event_id: str, observed_at: str) -> dict[str, Any]:
    """A lifecycle person event (docs/api.md#person-events), the `detail` of a bus event."""
    data = {
        "death": {
            "obituary_id": f"obit-{event_id}",
            "date_of_death": "2023-12-15",
            "publication_last_update_date": "2023-12-18",
            "source": "obituary_database",
            "obituary_url": f"https://news.example/{event_id}",
            "publication_name": "Local News",
            "confidence_score": 0.95,
        },
        "job_change": {
            "previous_employer": "Acme",
            "previous_title": "Engineer",
            "new_employer": "Globex",
            "new_title": "CTO",
            "effective_date": "2024-01-02",
            "source": "linkedin",
            "confidence_score": 0.8,
        },
        "relocation": {
            "previous_location": {"city": "Leeds", "country": "GB"},
            "new_location": {"city": "York", "country": "GB"},
            "effective_date": "2024-02-01",
            "source": "postal",
            "confidence_score": 0.7,
        },
    }[kind]
    return {
        "event_id": event_id,
        "type": kind,
        "minerva_pid": pid,
        "observed_at": observed_at,
        "org_id": None,
        "data": data,
    }


def bus_envelope(detail: dict[str, Any]) -> str:
    """The SQS body of a person event delivered by the bus's rule (EventBridge's envelope)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Person Event",
            "source": "segments.people",
            "account": "123456789012",
            "time": "2024-01-15T10:30:46Z",
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
    )
