"""The local Lambda runtime: a pool of execution environments per function, one invocation at a
time in each, and nothing of one invocation (resolver state, log keys, metrics) seen by another.

Through the tests' Api (the local stack's gateway without sockets) and on small handlers of a
template in a temporary directory.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers.logs import captured_log_lines

from conftest import Api, Org, template
from tools import cfn
from tools.local_stack import Runtime, lambda_context

# ---------------------------------------------------------------- the pool, on tiny handlers

POOL_TEMPLATE = """
Resources:
  Slow:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: slow.handler, ReservedConcurrentExecutions: 3}
  Fast:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: slow.handler}
"""

SLOW_PY = """
import contextvars
import threading
import time

IN_FLIGHT = {"now": 0, "max": 0}
LOCK = threading.Lock()
SEEN = contextvars.ContextVar("seen", default=None)


def handler(event, context):
    leaked = SEEN.get()
    SEEN.set(event["i"])
    with LOCK:
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    time.sleep(event.get("sleep", 0))
    with LOCK:
        IN_FLIGHT["now"] -= 1
    return {"module": __name__, "max_in_flight": IN_FLIGHT["max"], "leaked": leaked}
"""


@pytest.fixture
def pool_root(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "template.yaml").write_text(POOL_TEMPLATE)
    (tmp_path / "src" / "slow.py").write_text(textwrap.dedent(SLOW_PY))
    return tmp_path


def test_one_invocation_per_environment_up_to_the_reserved_concurrency(pool_root: Path) -> None:
    runtime = Runtime(cfn.load_template(pool_root / "template.yaml"), pool_root)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda i: runtime.invoke("Slow", {"i": i, "sleep": 0.05}), range(10)))
    modules = {r["module"] for r in results}
    assert len(modules) == 3  # ReservedConcurrentExecutions: 3 environments, the others waited
    assert {r["max_in_flight"] for r in results} == {1}  # never two invocations in one environment
    assert {r["leaked"] for r in results} == {None}  # each invocation starts in a fresh context
    assert runtime.pool("Slow").size == 3 and runtime.pool("Slow").busy == 0


def test_sequential_invocations_reuse_one_warm_environment(pool_root: Path) -> None:
    runtime = Runtime(cfn.load_template(pool_root / "template.yaml"), pool_root, default_concurrency=16)
    results = [runtime.invoke("Fast", {"i": i}) for i in range(5)]
    assert len({r["module"] for r in results}) == 1 and runtime.pool("Fast").size == 1
    assert runtime.pool("Fast").concurrency == 16  # no ReservedConcurrentExecutions: the default
    assert runtime.pool("Slow").concurrency == 3
    # Two functions with the same code never share an environment.
    assert runtime.invoke("Slow", {"i": 0})["module"] != results[0]["module"]


# ---------------------------------------------------------------- many creates at once

ROUNDS = 50
CONCURRENT = 50


def create_all(api: Api, org: Org, names: list[str]) -> list[Any]:
    def create(name: str) -> Any:
        return api.post("/v2/segments/create", key=org.key, body={"name": name})

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(create, names))


def test_fifty_concurrent_creates_of_different_names_fifty_times(api: Api, org: Org) -> None:
    started = time.monotonic()
    for round_ in range(ROUNDS):
        names = [f"r{round_}-n{i}" for i in range(CONCURRENT)]
        replies = create_all(api, org, names)
        failures = [(n, r.status, r.text) for n, r in zip(names, replies, strict=True) if r.status != 200]
        assert not failures, f"round {round_}: {failures[:3]}"
        assert len({r.json["segment_id"] for r in replies}) == CONCURRENT
    print(f"{ROUNDS} x {CONCURRENT} concurrent creates: {time.monotonic() - started:.1f} s")
    pool = api.gateway.runtime.pool("CreateSegmentFunction")
    assert 1 < pool.size <= pool.concurrency


# ---------------------------------------------------------------- logs and metrics stay with their invocation


FUNCTION_OF_PATH = {"/v2/segments/create": "CreateSegmentFunction", "/v2/segments": "SegmentQueryFunction"}


def test_every_log_line_carries_its_own_request_id_and_function_name(api: Api, org: Org) -> None:
    def call(i: int) -> tuple[str, str]:
        if i % 2:
            reply = api.post("/v2/segments/create", key=org.key, body={"name": f"logged {i}"})
            return reply.json["api_request_id"], "CreateSegmentFunction"
        reply = api.get("/v2/segments", key=org.key)
        return reply.headers["x-api-request-id"], "SegmentQueryFunction"

    with captured_log_lines() as lines, ThreadPoolExecutor(max_workers=16) as pool:
        requests = dict(pool.map(call, range(64)))
    assert len(requests) == 64
    authorizer_functions = {a.function for api in cfn.apis(template()).values() for a in api.authorizers.values()}
    handled = {}
    for line in lines:
        request_id = line.get("correlation_id")
        assert request_id in requests, line  # no line without, or with an unknown, correlation id
        assert line["function_name"] in {requests[request_id], *authorizer_functions}, line
        assert line["function_request_id"] and isinstance(line["cold_start"], bool)
        if line["message"] == "request handled":
            assert line["function_name"] == requests[request_id], line
            handled[request_id] = line
    assert set(handled) == set(requests)  # every request logged, once
    assert all(line["org_id"] == org.org_id for line in handled.values())


def json_objects(line: str) -> list[dict[str, Any]]:
    """The JSON objects of one line of stdout. Powertools prints a blob and its newline in two writes,
    so two environments of this process flushing at once can share a line ("{...}{...}"): on Lambda
    each environment has its own stdout."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(line):
        obj, at = decoder.raw_decode(line, at)
        found.append(obj)
    return found


def emf_blobs(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return [blob for line in lines for blob in json_objects(line) if "_aws" in blob]


def test_concurrent_invocations_flush_their_own_emf_blob(api: Api, org: Org, capsys: pytest.CaptureFixture) -> None:
    names = [f"metric {i}" for i in range(40)]
    capsys.readouterr()
    replies = create_all(api, org, names + names[:10])  # 40 creates, 10 duplicates (404)
    blobs = emf_blobs(capsys.readouterr().out)
    assert sorted(r.status for r in replies) == [200] * 40 + [404] * 10
    # One blob per invocation, each with its own single metric: nothing merged, nothing lost.
    assert (
        sorted(key for blob in blobs for key in blob if key.startswith(("Segments", "Errors")))
        == ["Errors404"] * 10 + ["SegmentsCreated"] * 40
    )
    assert all(len([k for k in b if k.startswith(("Segments", "Errors"))]) == 1 for b in blobs)
    assert all(blob.get("SegmentsCreated", [1]) == [1] and blob.get("Errors404", [1]) == [1] for blob in blobs)


def test_observed_keeps_each_threads_metrics_and_log_keys(capsys: pytest.CaptureFixture) -> None:
    """The decorator alone, on threads that interleave their metric and log calls."""
    from segments.observability import logger, metrics, observed

    barrier = threading.Barrier(8)

    @observed
    def handler(event: dict[str, Any], context: Any) -> None:
        metrics.add_metric(name="First", unit="Count", value=event["i"])
        metrics.add_metadata(key="invocation", value=event["i"])
        barrier.wait(timeout=10)  # every thread has added its first metric before any adds more
        metrics.add_metric(name="Second", unit="Count", value=event["i"])
        logger.warning("done", extra={"i": event["i"]})

    capsys.readouterr()
    metrics.clear_metrics()  # what use cases called directly by other tests (outside `observed`) left there
    with captured_log_lines() as lines, ThreadPoolExecutor(max_workers=8) as pool:
        contexts = [lambda_context(f"fn-{i}") for i in range(8)]
        list(pool.map(lambda i: handler({"i": i, "requestContext": {"requestId": f"{i:032x}"}}, contexts[i]), range(8)))
    blobs = emf_blobs(capsys.readouterr().out)
    assert sorted(blob["invocation"] for blob in blobs) == list(range(8))
    assert all(blob["First"] == blob["Second"] == [blob["invocation"]] for blob in blobs)  # EMF values are lists
    assert sorted((line["i"], line["function_name"], line["correlation_id"]) for line in lines) == [
        (i, f"fn-{i}", f"req_{i:032x}") for i in range(8)
    ]
    assert metrics.metric_set == {}  # outside an invocation: the process-wide set, untouched
