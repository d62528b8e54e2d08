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
import logging
import multiprocessing
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from tools import cfn
from tools.bench import core
from tools.local_stack import lambda_context
from tools.moto_atomic import make_moto_atomic

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
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
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
    proc = subprocess.run(
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


# ------------------------------------------------------------------ DynamoDB call counting


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


class _BeforeCalls:
    """While active, `_hook` goes on the `before-call` events of every new client of `services`,
    whichever boto3 or botocore session makes it; `calls` is what the hook records."""

    services: frozenset[str]
    calls: list[Any]

    def __init__(self) -> None:
        self._original: Any = None

    _hook: Callable[..., None]

    def __enter__(self) -> Self:
        import botocore.session

        original = botocore.session.Session.create_client
        hook, services = self._hook, self.services

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            name = client.meta.service_model.service_name
            if name in services:
                client.meta.events.register(f"before-call.{name}", hook)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import botocore.session

        botocore.session.Session.create_client = self._original  # type: ignore[method-assign]

    def clear(self) -> None:
        self.calls.clear()


class DynamoCalls(_BeforeCalls):
    """Counts DynamoDB API calls (not HTTP retries) of every client created while active.

    A `before-call.dynamodb` hook goes on each new client's `meta.events`, whichever boto3 or
    botocore session made it (the core's client and the Powertools idempotency client alike).
    Clients must be created inside the block: reset the core's cached client first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.services = frozenset({"dynamodb"})
        self.calls: list[Call] = []

    def _hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(Call(model.name, _tables_in(params.get("body"))))


    def summary(self) -> str:
        writes = sum(c.is_write for c in self.calls)
        listing = ", ".join(str(c) for c in self.calls) or "none"
        return f"{len(self.calls)} call(s), {writes} write(s): {listing}"


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


# ------------------------------------------------------------------ moto


@contextlib.contextmanager
def moto_in_process() -> Iterator[Any]:
    """moto's mock_aws with the template's tables; yields a DynamoDB client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        cfn.create_tables(client, cfn.load_template(TEMPLATE))
        yield client


def _serve(port: int, ready: Any) -> None:
    """A moto server's process (`moto_server(own_process=True)`): serve until terminated."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    threading.Event().wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(*, own_process: bool) -> Iterator[str]:
    """A ThreadedMotoServer on a free loopback port, in this process or in its own; the core's
    AWS_ENDPOINT_URL points at it, and the template's tables are created in it. Yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    process: Any = None
    server: Any = None
    if own_process:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        process = ctx.Process(target=_serve, args=(port, ready), daemon=True)
        process.start()
        if not ready.wait(60):
            raise RuntimeError("moto server did not start")
    else:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
    url = f"http://127.0.0.1:{port}"
    # A server thread shares this process's moto state with earlier runs: start from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()
    os.environ["AWS_ENDPOINT_URL"] = url
    core.reset_core()
    try:
        cfn.create_tables(core.dynamo_client(), cfn.load_template(TEMPLATE))
        yield url
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        core.reset_core()
        if server is not None:
            server.stop()
        if process is not None:
            process.terminate()
            process.join(10)


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


class ServiceCalls(_BeforeCalls):
    """Counts the API calls of the named services (`dynamodb`, `events`, ...) of every client created
    while active, as DynamoCalls does for DynamoDB; `calls` are (service, operation) pairs."""

    def __init__(self, *services: str) -> None:
        super().__init__()
        self.services = frozenset(services)
        self.calls: list[tuple[str, str]] = []

    def _hook(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))


    def by_operation(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for service, op in self.calls:
            name = op if service == "dynamodb" else f"{service}:{op}"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))


_GSI = threading.local()


@contextlib.contextmanager
def moto_partition_lookup() -> Iterator[None]:
    """Give moto's Query a lookup by partition, of the table and of its global secondary indexes.

    moto 5 answers every Query by sorting and evaluating every item of the table (O(table) per
    call), where DynamoDB reads only the partition asked for; with 100,000 members that emulator
    cost would be the whole figure. Here a table Query evaluates only the items of its partition,
    and an index Query only the current items recorded under its partition value: moto's
    `Table.put_item` also records the item's key under each index partition value it holds. The
    rest of the Query (conditions, order, limits, pages) is moto's own code. Items that gain an
    index attribute by UpdateItem are not recorded: use it where index attributes are written by
    puts (member items are). Undone on exit."""
    from moto.dynamodb.models.table import Table

    original_put, original_query, original_all = Table.put_item, Table.query, Table.all_items
    recorded: dict[tuple[int, str, str, str], set[tuple[Any, Any]]] = {}

    def hash_attrs(table: Any) -> list[str]:
        return [k["AttributeName"] for i in (table.global_indexes or []) for k in i.schema if k["KeyType"] == "HASH"]

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, item_attrs, *args, **kwargs)
        key = (item.hash_key, item.range_key)
        for attr in hash_attrs(self):
            value = item_attrs.get(attr)
            if isinstance(value, dict) and len(value) == 1:
                (kind, raw), = value.items()
                recorded.setdefault((id(self), attr, kind, str(raw)), set()).add(key)
        return item

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        conditions = kwargs.get("hash_key_conditions") or []
        hash_key = kwargs.get("hash_key", args[0] if args else None)
        candidates: list[Any] = []
        if index_name is None and hash_key is not None and self.range_key_attr:
            candidates = list(self.items.get(hash_key, {}).values())
        elif index_name is not None and len(conditions) == 1:
            attr, value = conditions[0]
            for item_hash, item_range in recorded.get((id(self), attr, value.type, str(value.value)), ()):
                stored = self.items.get(item_hash)
                if stored is not None and item_range is not None:
                    stored = stored.get(item_range)
                if stored is not None:
                    candidates.append(stored)
        else:
            return original_query(self, *args, **kwargs)
        _GSI.candidates = candidates
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _GSI.candidates = None

    def all_items(self: Any) -> Any:
        candidates = getattr(_GSI, "candidates", None)
        if candidates is None:
            return original_all(self)
        return sorted(candidates, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.put_item, Table.query, Table.all_items = put_item, query, all_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.put_item, Table.query, Table.all_items = original_put, original_query, original_all  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_at_scale() -> Iterator[None]:
    """The functions' environment and in-process moto fit for 100,000-item tables: atomic
    transactions that do not copy the table (docs/decisions.md) and a Query by partition."""
    make_moto_atomic()
    with function_env(), moto_in_process(), moto_partition_lookup():
        yield


def sqs_batch(bodies: list[str]) -> dict[str, Any]:
    """An SQS event source batch as Lambda delivers it (the bodies as messages)."""
    return {"Records": [
        {"messageId": str(uuid.uuid4()), "receiptHandle": "AQEB" + uuid.uuid4().hex, "body": body,
         "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1705314645123", "SenderId": "AIDABENCH",
                        "ApproximateFirstReceiveTimestamp": "1705314645130"},
         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:PersonEventsQueue", "awsRegion": REGION}
        for body in bodies
    ]}


def stream_inserts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """DynamoDB stream INSERT records of stored items (raw attribute maps), as Lambda delivers them."""
    return {"Records": [
        {"eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
         "awsRegion": REGION,
         "dynamodb": {"ApproximateCreationDateTime": 1705314645, "Keys": {"pk": item["pk"], "sk": item["sk"]},
                      "SequenceNumber": f"{11100000000000000000000 + n}", "SizeBytes": 1024,
                      "StreamViewType": "NEW_AND_OLD_IMAGES", "NewImage": item},
         "eventSourceARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/SegmentsTable/stream/2024-01-15T10:00:00.000"}
        for n, item in enumerate(items)
    ]}


def person_event(kind: str, pid: str, event_id: str, observed_at: str) -> dict[str, Any]:
    """A lifecycle person event (§4.1), the `detail` of a bus event."""
    data = {
        "death": {"obituary_id": f"obit-{event_id}", "date_of_death": "2023-12-15",
                  "publication_last_update_date": "2023-12-18", "source": "obituary_database",
                  "obituary_url": f"https://news.example/{event_id}", "publication_name": "Local News",
                  "confidence_score": 0.95},
        "job_change": {"previous_employer": "Acme", "previous_title": "Engineer", "new_employer": "Globex",
                       "new_title": "CTO", "effective_date": "2024-01-02", "source": "linkedin",
                       "confidence_score": 0.8},
        "relocation": {"previous_location": {"city": "Leeds", "country": "GB"},
                       "new_location": {"city": "York", "country": "GB"}, "effective_date": "2024-02-01",
                       "source": "postal", "confidence_score": 0.7},
    }[kind]
    return {"event_id": event_id, "type": kind, "minerva_pid": pid, "observed_at": observed_at, "org_id": None,
            "data": data}


def bus_envelope(detail: dict[str, Any]) -> str:
    """The SQS body of a person event delivered by the bus's rule (EventBridge's envelope)."""
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Person Event",
                       "source": "segments.people", "account": "123456789012", "time": "2024-01-15T10:30:46Z",
                       "region": REGION, "resources": [], "detail": detail})
