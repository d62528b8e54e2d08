"""The local stack's stream consumers after cancelled transactions, through real HTTP and the
emulated queue, on the project's template: a duplicate create (a cancelled TransactWriteItems)
must not stop them, nor must a stream shard object replaced under them, and after a minute of
cancelled transactions interleaved with stream work every consumer has read its stream to the end.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from helpers.http import Reply, call
from helpers.waiting import wait_for

from conftest import ACCOUNT, REGION, ROOT
from tools.local_stack import LocalStack
from tools.local_stack.pollers.streams import StreamPoller

DEATH = {
    "obituary_id": "obit-1",
    "date_of_death": "2023-12-15",
    "publication_last_update_date": "2023-12-18",
    "source": "obituary_database",
    "obituary_url": "https://news.example/obit-1",
    "publication_name": "Local News",
    "confidence_score": 0.95,
}


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


@pytest.fixture(scope="class")
def stack() -> Iterator[LocalStack]:
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        assert running.info is not None
        yield running


class Api:
    def __init__(self, running: LocalStack) -> None:
        assert running.info is not None and running.info.demo_key
        self.url, key = running.info.api_url, running.info.demo_key
        self.minerva = {"x-api-key": key, "content-type": "application/json"}
        self.sheep = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        sqs = boto3.client("sqs", endpoint_url=running.info.moto_url, region_name=REGION)
        self.sqs, self.queue = sqs, sqs.get_queue_url(QueueName="PersonEventsQueue")["QueueUrl"]

    def create(self, name: str) -> Reply:
        return call(self.url, "POST", "/v2/segments/create", {"name": name}, self.minerva)

    def add(self, segment_id: str, *pids: str) -> None:
        body = {"segment_id": segment_id, "minerva_pids": list(pids)}
        reply = call(self.url, "POST", "/v2/segments/members/add", body, self.minerva)
        assert reply.status == 200, reply.body

    def dynamic(self, name: str, city: str) -> str:
        rules = [{"field": "city", "operator": "equals", "value": city}]
        body = {"name": name, "resource_type": "person", "segment_type": "dynamic", "rules": rules}
        reply = call(self.url, "POST", "/segments/v2/demo/create", body, self.sheep)
        assert reply.status == 201, reply.body
        return str(reply.json["uid"])

    def count(self, uid: str) -> dict[str, Any]:
        reply = call(self.url, "GET", f"/segments/v2/demo/segment/{uid}/count", headers=self.sheep)
        assert reply.status == 200, reply.body
        return dict(reply.json)

    def deaths(self, segment_id: str) -> set[str]:
        path = f"/v2/segments/signals/deaths?segment_id={segment_id}&limit=100"
        reply = call(self.url, "GET", path, headers=self.minerva)
        assert reply.status == 200, reply.body
        return {death["minerva_pid"] for death in reply.json["results"]}

    def send(self, *events: dict[str, Any]) -> None:
        for start in range(0, len(events), 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(event)} for i, event in enumerate(events[start : start + 10])
            ]
            assert not self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries).get("Failed")


def profile(pid: str, **attributes: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:16]}",
        "type": "profile",
        "minerva_pid": pid,
        "observed_at": "2026-01-01T00:00:00Z",
        "org_id": "demo-org",
        "data": {"attributes": attributes},
    }


def death(pid: str) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:16]}",
        "type": "death",
        "minerva_pid": pid,
        "observed_at": "2024-01-15T10:30:45.123456Z",
        "org_id": None,
        "data": DEATH,
    }


def pids(prefix: str, n: int) -> list[str]:
    return [f"p-{prefix}{i:04d}" for i in range(n)]


def ready_with(api: Api, uid: str, n: int) -> Callable[[], bool]:
    def check() -> bool:
        state = api.count(uid)
        return state["count"] == n and state["build_state"] == "ready"

    return check


def cancelled_create(api: Api, name: str) -> None:
    reply = api.create(name)
    assert reply.status == 404 and b"already exists" in reply.body, reply.body


def caught_up(running: LocalStack) -> bool:
    """Every stream poller has read its table's stream shard to its last record and has no
    record left to deliver."""
    from moto.dynamodb.models import dynamodb_backends

    tables = dynamodb_backends[ACCOUNT][REGION].tables
    pollers = [p for p in running._pollers if isinstance(p, StreamPoller)]
    assert pollers
    for poller in pollers:
        shard = tables[poller.source.table].stream_shard
        last = str(shard.starting_sequence_number + len(shard.items) - 1) if shard.items else None
        states = list(poller.shards.values())
        if len(states) != 1 or states[0].buffer or states[0].last_sequence != last:
            return False
    return True


class TestStreamsAfterCancelledTransactions:
    def test_after_a_duplicate_create_a_rule_segment_fills_and_a_late_joiner_sees_a_death(
        self, stack: LocalStack
    ) -> None:
        api = Api(stack)
        watched = api.create("Watched")
        assert watched.status == 200, watched.body
        segment_id = watched.json["segment_id"]
        early, late = "p-early0001", "p-late0001"
        api.add(segment_id, early)
        uid = api.dynamic("Tadcaster", "tadcaster")
        wait_for("the empty rule segment's build", ready_with(api, uid, 0))

        cancelled_create(api, "Watched")  # the README's duplicate create

        # the live path only (the segment is built): RuleMembershipFunction reads the table's stream
        people = pids("tad", 5)
        api.send(*[profile(pid, city="Tadcaster") for pid in people], death(early), death(late))
        wait_for("the rule segment to fill from the stream", ready_with(api, uid, len(people)))
        wait_for("the member's death", lambda: api.deaths(segment_id) == {early})
        api.add(segment_id, late)  # SignalFeedFunction serves the late joiner from its ledger entry
        wait_for("the late joiner's death", lambda: api.deaths(segment_id) == {early, late})
        wait_for("every stream consumer to catch up", lambda: caught_up(stack))

    def test_a_replaced_stream_shard_is_noticed(self, stack: LocalStack) -> None:
        """moto's own rollback used to put a copy of the table (and of its stream shard) in place of
        the table; the pollers' iterators then read a shard nothing is written to any more."""
        from moto.dynamodb.models import dynamodb_backends

        from tools import moto_atomic

        api = Api(stack)
        uid = api.dynamic("Selby", "selby")
        wait_for("the empty rule segment's build", ready_with(api, uid, 0))
        wait_for("every stream consumer to catch up", lambda: caught_up(stack))
        tables = dynamodb_backends[ACCOUNT][REGION].tables
        with moto_atomic._LOCK:
            old = tables["SegmentsTable"]
            tables["SegmentsTable"] = copy.deepcopy(old)
        assert tables["SegmentsTable"].stream_shard is not old.stream_shard

        people = pids("sel", 3)
        api.send(*[profile(pid, city="Selby") for pid in people])
        wait_for("the rule segment to fill from the new shard", ready_with(api, uid, len(people)))
        wait_for("every stream consumer to catch up", lambda: caught_up(stack))

    def test_a_profile_of_the_documented_maximum_size_goes_through(self, stack: LocalStack) -> None:
        from segments.events.person_events import ATTRIBUTES_MAX

        api = Api(stack)
        uid = api.dynamic("Malton", "malton")
        wait_for("the empty rule segment's build", ready_with(api, uid, 0))
        attributes: dict[str, Any] = {f"attribute_{i:03d}": i for i in range(ATTRIBUTES_MAX - 1)}
        api.send(profile("p-big0001", city="Malton", **attributes))
        wait_for("the big profile's record to join", ready_with(api, uid, 1))
        wait_for("every stream consumer to catch up", lambda: caught_up(stack))

    @pytest.mark.slow
    def test_a_minute_of_cancelled_transactions_among_stream_work(self, stack: LocalStack) -> None:
        """Rounds of: two callers racing to create one name (one cancelled transaction), a repeat of
        an existing name (another), profile events joining a rule segment, members added to a
        segment whose people have died. Then every consumer catches up and every count is exact."""
        api = Api(stack)
        watched = api.create("Soak watched")
        assert watched.status == 200, watched.body
        segment_id = watched.json["segment_id"]
        uid = api.dynamic("Soak Ripon", "ripon")
        wait_for("the empty rule segment's build", ready_with(api, uid, 0))
        dead = pids("dead", 80)
        api.send(*[death(pid) for pid in dead])

        rounds, joining, added = 80, 0, []
        with ThreadPoolExecutor(max_workers=3) as pool:
            for n in range(rounds):
                name = f"Soak {n}"
                racing = [pool.submit(api.create, name) for _ in range(2)]
                people = pids(f"rip{n:02d}x", 3)
                api.send(*[profile(pid, city="Ripon" if i != 2 else "Thirsk") for i, pid in enumerate(people)])
                joining += 2
                api.add(segment_id, dead[n])
                added.append(dead[n])
                cancelled_create(api, "Soak watched")
                statuses = sorted(future.result().status for future in racing)
                assert statuses == [200, 404], statuses
                time.sleep(0.5)  # the workload's pace: about a minute of it

        wait_for("the rule segment to count every joiner", ready_with(api, uid, joining), timeout=180)
        wait_for("every added member's death", lambda: api.deaths(segment_id) == set(added), timeout=180)
        wait_for("every stream consumer to catch up", lambda: caught_up(stack), timeout=180)
