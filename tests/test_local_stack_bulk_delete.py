"""The local stack runs a bulk delete end to end, as deployed: the route queues the first chunk on
BulkDeleteQueue, the stack's SQS poller feeds BulkDeleteFunction chunk after chunk, the notification
follows it, and the stream poller takes the deleted people out of a dynamic segment
(RuleMembershipFunction on the REMOVEs). Real HTTP, the project's template.yaml."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.http import call

from tools.local_stack import LocalStack, StackInfo

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120.0  # seconds to wait for the asynchronous work (a deadline against hanging, not a speed check)


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


@pytest.fixture(scope="module")
def stack() -> Iterator[StackInfo]:
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        assert running.info is not None
        yield running.info


def until(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"the stack did not get there: {what}")


def test_a_bulk_delete_runs_through_the_stacks_queue_and_stream(stack: StackInfo) -> None:
    from segments.store import people

    auth = {"Authorization": f"Bearer {stack.demo_key}", "content-type": "application/json"}
    base = f"/segments/v2/{stack.bucket}"
    pids = [f"p-ls{i:02d}" for i in range(7)]
    for pid in pids:
        people.put(stack.org, pid, {"tier": "gold"})
    gold = call(
        stack.api_url,
        "POST",
        f"{base}/create",
        {
            "name": "Gold",
            "resource_type": "person",
            "rules": [{"field": "tier", "operator": "equals", "value": "gold"}],
        },
        auth,
    )
    assert gold.status == 201, gold.body
    gold_uid = gold.json["uid"]

    def gold_count() -> int:
        reply = call(stack.api_url, "GET", f"{base}/segment/{gold_uid}/count", headers=auth)
        return int(reply.json["count"]) if reply.json.get("build_state") == "ready" else -1

    until("the dynamic segment is built", lambda: gold_count() == len(pids))
    doomed = call(
        stack.api_url,
        "POST",
        f"{base}/create",
        {"name": "Doomed", "resource_type": "person", "segment_type": "static"},
        auth,
    )
    assert doomed.status == 201, doomed.body
    added = call(
        stack.api_url,
        "POST",
        "/v2/segments/members/add",
        {"segment_id": doomed.json["uid"], "minerva_pids": pids[:5]},
        {"x-api-key": str(stack.demo_key)},
    )
    assert added.status == 200, added.body

    started = call(stack.api_url, "POST", f"{base}/segment/{doomed.json['uid']}/action/delete?batch_size=2", None, auth)
    assert started.status == 200, started.body
    path = "/segments/v2" + started.json["notification_uri"].rstrip("/")

    def finished() -> dict[str, Any] | None:
        reply = call(stack.api_url, "GET", path, headers=auth)
        assert reply.status == 200, reply.body
        return dict(reply.json) if reply.json["status"] in ("done", "stopped") else None

    note = until("the bulk delete is done", finished)
    assert note["status"] == "done", note
    assert note["progress"]["deleted"] == 5 and note["progress"]["chunks"] >= 3
    until("the deleted people leave the dynamic segment", lambda: gold_count() == 2)
