"""Exact counts under concurrency: many callers add and remove overlapping PIDs on one segment at
once, through the add and remove functions. Afterwards the stored size, the members actually
stored, the sum of n_added minus n_deleted and the ledger all agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers.members import active_count, add, ledger, new_segment, remove, size
from helpers.raw_table import raw_size

from conftest import Api, Org
from segments import store
from segments.store import dynamo


@pytest.fixture(autouse=True)
def patient_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers of one segment queue on its lease; here they may wait as long as they need."""
    monkeypatch.setenv("LEASE_WAIT_SECONDS", "300")
    store.reset()


def run_all(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def stored_active(segment_id: str) -> set[str]:
    found: set[str] = set()
    for page in dynamo.query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues=dynamo.values(pk=f"SEG#{segment_id}", p="PID#"),
        ProjectionExpression="sk, active",
        ConsistentRead=True,
    ):
        found |= {i["sk"]["S"].removeprefix("PID#") for i in page["Items"] if i["active"]["BOOL"]}
    return found


def replay_ledger(entries: list[tuple[str, str]]) -> set[str]:
    members: set[str] = set()
    for pid, change in entries:
        if change == "added":
            assert pid not in members, f"{pid} added twice in a row"
            members.add(pid)
        else:
            assert pid in members, f"{pid} removed while not a member"
            members.remove(pid)
    return members


def check(org: Org, segment_id: str, added: int, deleted: int) -> set[str]:
    """The stored size, the active member items, n_added - n_deleted and the ledger all agree."""
    stored = stored_active(segment_id)
    assert size(org, segment_id) == len(stored) == added - deleted

    assert raw_size(org.org_id, segment_id) == len(stored)
    entries = ledger(segment_id)
    assert replay_ledger(entries) == stored
    changes = [c for _, c in entries]
    assert changes.count("added") == added and changes.count("removed") == deleted
    return stored


@pytest.mark.slow
def test_eight_callers_adding_2000_overlapping_pids_then_interleaved_removes(api: Api, org: Org) -> None:
    sid = new_segment(api, org)

    def adder(start: int, count: int) -> Callable[[], dict[str, Any]]:
        pids = [f"p-{i:05d}" for i in range(start, start + count)]
        random.Random(start).shuffle(pids)
        return lambda: add(api, org, sid, pids).json

    def remover(start: int, count: int, step: int) -> Callable[[], dict[str, Any]]:
        return lambda: remove(api, org, sid, [f"p-{i:05d}" for i in range(start, start + count, step)]).json

    first = run_all([adder(i * 1000, 2000) for i in range(8)])
    assert all("results" in r for r in first), first
    added = sum(r["results"]["n_added"] for r in first)
    assert added == 9000  # the union 0..8999, each counted once however the callers interleaved
    assert sum(r["results"]["n_redundant_additions"] for r in first) == 16_000 - 9000
    assert max(r["results"]["new_current_size"] for r in first) == 9000
    check(org, sid, added, 0)
    assert active_count(sid) == 9000  # the recount a crashed holder's successor would make

    second = run_all(
        [remover(i * 1500, 2000, 2) for i in range(4)]  # overlapping removals ...
        + [adder(8000 + i * 400, 1000) for i in range(4)]  # ... while others add, overlapping both
    )
    assert all("results" in r for r in second), second
    added += sum(r["results"].get("n_added", 0) for r in second)
    deleted = sum(r["results"].get("n_deleted", 0) for r in second)
    assert deleted > 0 and added > 9000
    stored = check(org, sid, added, deleted)
    assert {f"p-{i:05d}" for i in range(9000, 9200)} <= stored  # only ever added


def test_adds_and_removes_of_the_same_pids_race_and_stay_exact(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i}" for i in range(60)]

    def call(n: int) -> dict[str, Any]:
        rng = random.Random(n)
        chosen = rng.sample(pids, 40)
        return (add if n % 2 else remove)(api, org, sid, chosen).json["results"]

    out = run_all([lambda n=n: call(n) for n in range(16)])
    added = sum(r.get("n_added", 0) for r in out)
    deleted = sum(r.get("n_deleted", 0) for r in out)
    check(org, sid, added, deleted)
    sizes = sorted(r["new_current_size"] for r in out)
    assert all(0 <= s <= 60 for s in sizes)


def test_concurrent_retries_with_one_idempotency_key_apply_once(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i}" for i in range(300)]
    out = run_all([lambda: add(api, org, sid, pids, headers={"Idempotency-Key": "same"}) for _ in range(6)])
    ok = [r for r in out if r.status == 200]
    assert ok and all(r.status in (200, 409) for r in out)  # 409: the first is still in progress
    assert all(r.json["results"]["n_added"] == 300 for r in ok)
    check(org, sid, 300, 0)
