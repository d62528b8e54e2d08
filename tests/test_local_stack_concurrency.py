"""The local stack under concurrent callers, through real HTTP: the same invariants as the tests.

One stack of the project's template on free loopback ports for the class; its moto server runs
with tools.moto_atomic's write lock, as the tests' moto does.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers.http import Reply, call
from helpers.logs import captured_log_lines

from conftest import ROOT
from tools.local_stack import LocalStack, StackInfo

ROUNDS = 10
CONCURRENT = 50


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


@pytest.fixture(scope="class")
def stack() -> Iterator[StackInfo]:
    with LocalStack(port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        assert running.info is not None
        yield running.info


def run_all(calls: list[Any]) -> list[Reply]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def headers(stack: StackInfo) -> dict[str, str]:
    return {"x-api-key": stack.demo_key or "", "content-type": "application/json"}


def create(stack: StackInfo, name: str) -> Reply:
    return call(stack.api_url, "POST", "/v2/segments/create", {"name": name}, headers(stack))


class TestConcurrentCallers:
    def test_the_stack_applies_the_moto_write_lock(self) -> None:
        """In a fresh process, where no test fixture has patched moto before the stack starts."""
        script = (
            "from moto.dynamodb.models import DynamoDBBackend\n"
            "from tools.local_stack import LocalStack\n"
            "with LocalStack(port=0, moto_port=0, create_demo_key=False):\n"
            "    print(hasattr(DynamoDBBackend.transact_write_items, '__wrapped__'))\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/core"), str(ROOT)])}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["True"]

    @pytest.mark.parametrize("callers", [3, 8])
    def test_concurrent_creates_of_one_name_one_winner_and_it_reads(self, stack: StackInfo, callers: int) -> None:
        """Before the many creates below: each loser's failed transaction copies the table in moto."""
        for _ in range(5):
            name = f"contested {uuid.uuid4().hex[:8]}"
            replies = run_all([lambda name=name: create(stack, name)] * callers)
            winners = [r for r in replies if r.status == 200]
            assert len(winners) == 1, [(r.status, r.body) for r in replies]
            assert all(r.status == 404 and b"already exists" in r.body for r in replies if r.status != 200)
            segment_id = winners[0].json["segment_id"]
            read = call(stack.api_url, "GET", f"/v2/segments/{segment_id}", headers=headers(stack))
            assert read.status == 200, read.body
            assert read.json["segment_id"] == segment_id and read.json["name"] == name

    def test_fifty_concurrent_creates_of_different_names(self, stack: StackInfo) -> None:
        started = time.monotonic()
        for round_ in range(ROUNDS):
            names = [f"http r{round_} n{i}" for i in range(CONCURRENT)]
            replies = run_all([lambda n=n: create(stack, n) for n in names])
            failures = [(n, r.status, r.body) for n, r in zip(names, replies, strict=True) if r.status != 200]
            assert not failures, f"round {round_}: {failures[:3]}"
        print(f"HTTP: {ROUNDS} x {CONCURRENT} concurrent creates in {time.monotonic() - started:.1f} s")

    def test_overlapping_adds_keep_the_size_equal_to_the_pageable_members(self, stack: StackInfo) -> None:
        segment_id = create(stack, f"adds {uuid.uuid4().hex[:8]}").json["segment_id"]

        def add(start: int) -> Reply:
            body = {"segment_id": segment_id, "minerva_pids": [f"p-{i:04d}" for i in range(start, start + 200)]}
            return call(stack.api_url, "POST", "/v2/segments/members/add", body, headers(stack))

        replies = run_all([lambda s=s: add(s) for s in range(0, 600, 100)])  # 6 x 200, union 0..699
        assert [r.status for r in replies] == [200] * 6, [r.body for r in replies]
        assert sum(r.json["results"]["n_added"] for r in replies) == 700

        pids: list[str] = []
        query = f"/v2/segments/members?segment_id={segment_id}"
        page = call(stack.api_url, "GET", query, headers=headers(stack)).json["results"]
        pids += [item["minerva_pid"] for item in page["items"]]
        while page["next_cursor"]:
            page = call(stack.api_url, "GET", f"{query}&cursor={page['next_cursor']}", headers=headers(stack))
            page = page.json["results"]
            pids += [item["minerva_pid"] for item in page["items"]]
        segment = call(stack.api_url, "GET", f"/v2/segments/{segment_id}", headers=headers(stack)).json
        assert segment["current_size"] == len(pids) == len(set(pids)) == 700

    def test_every_log_line_carries_its_own_request_id(self, stack: StackInfo) -> None:
        def one(i: int) -> tuple[str, str]:
            if i % 2:
                reply = create(stack, f"logged {uuid.uuid4().hex}")
                return reply.headers["x-api-request-id"], "CreateSegmentFunction"
            reply = call(stack.api_url, "GET", "/v2/segments", headers=headers(stack))
            return reply.headers["x-api-request-id"], "SegmentQueryFunction"

        with captured_log_lines() as lines:
            requests = dict(run_all([lambda i=i: one(i) for i in range(40)]))
        assert len(requests) == 40
        handled: dict[str, str] = {}
        api_functions = {"CreateSegmentFunction", "SegmentQueryFunction"}
        for line in lines:
            name = line.get("function_name", "")
            if name not in api_functions and not name.endswith("AuthorizerFunction"):
                # a queue or stream consumer the creates set off: its own invocation's id
                assert str(line.get("correlation_id", "")).startswith("req_"), line
                assert line.get("correlation_id") not in requests, line
                continue
            assert line.get("correlation_id") in requests, line
            if line["message"] == "request handled":
                handled[line["correlation_id"]] = line["function_name"]
            else:
                assert (
                    line["function_name"].endswith("AuthorizerFunction")
                    or line["function_name"] == requests[line["correlation_id"]]
                ), line
        assert handled == requests  # each request's line, with its own function's name

    def test_a_create_after_20k_items_copies_no_table(
        self, stack: StackInfo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
    ) -> None:
        """moto's failed-transaction path copies whole tables; a create that succeeds must not."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.table import Table

        backend = dynamodb_backends["123456789012"]["us-east-1"]
        started = time.monotonic()
        assert create(stack, f"small table {uuid.uuid4().hex[:8]}").status == 200
        small = time.monotonic() - started
        filler = uuid.uuid4().hex
        for i in range(20_000):
            backend.put_item("SegmentsTable", {"pk": {"S": f"SEG#{filler}"}, "sk": {"S": f"PID#{i:06d}"}})

        copied: list[str] = []
        real = copy.deepcopy

        def spy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table):
                copied.append(value.name)
            return real(value, memo)

        monkeypatch.setattr(copy, "deepcopy", spy)
        started = time.monotonic()
        assert create(stack, f"large table {uuid.uuid4().hex[:8]}").status == 200
        large = time.monotonic() - started
        assert copied == []
        with capsys.disabled():
            print(f"\ncreate through HTTP: {small * 1000:.0f} ms small table, {large * 1000:.0f} ms after 20k items")
