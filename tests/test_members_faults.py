"""Nothing lost: throttling and unprocessed items are retried; a request that cannot finish is a 503
with Retry-After that leaves the segment consistent; a retry with the same Idempotency-Key completes
it with the counts the first attempt would have given; a crashed lease holder is recounted after.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from helpers.assertions import assert_error
from helpers.faults import THROTTLED, inject, partial, watch
from helpers.members import (
    active_count,
    add,
    ledger,
    member,
    new_segment,
    remove,
    results,
    segment_item,
    size,
)
from helpers.raw_table import raw_active_count, raw_size

from conftest import Api, Org
from segments import store
from segments.store import dynamo, keys, lease
from segments.store import members as members_store
from segments.usecases import planning

# Retries still happen, counted as before, without sleeping between them.
pytestmark = pytest.mark.usefixtures("no_backoff")


def is_ledger(request: dict[str, Any]) -> bool:
    [requests] = request["RequestItems"].values()
    return any(r["PutRequest"]["Item"]["sk"]["S"].startswith("LOG#") for r in requests)


def is_count(request: dict[str, Any]) -> bool:
    return request.get("Select") == "COUNT"


def ledger_is_exact(segment_id: str) -> None:
    entries = ledger(segment_id)
    assert len(entries) == len(set(entries)), "a change was logged twice"


# ------------------------------------------------------------------ retried to completion


def test_throttled_batch_writes_are_retried_to_completion(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def first_attempts(request: dict[str, Any]) -> bool:
        with lock:
            refuse = request not in seen
            seen.append(request)
        return refuse

    with inject("BatchWriteItem", THROTTLED, when=first_attempts):
        r = results(add(api, org, sid, [f"p-{i}" for i in range(600)]))
    assert r["n_added"] == 600 and r["new_current_size"] == 600
    assert len(seen) == 2 * 25  # 24 member batches + 1 ledger batch, each refused once, then written
    assert active_count(sid) == 600 and size(org, sid) == 600
    ledger_is_exact(sid)


def test_throttled_batch_reads_are_retried_to_completion(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(300)]))
    with inject("BatchGetItem", THROTTLED, times=2) as fault:
        r = results(add(api, org, sid, [f"p-{i}" for i in range(250, 450)]))
    assert fault.hits == 2
    assert r == {"invalid_minerva_pids": [], "n_redundant_additions": 50, "n_added": 150, "new_current_size": 450}


def test_unprocessed_items_and_keys_are_retried_until_done(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(100)]))
    with partial("BatchWriteItem") as writes, partial("BatchGetItem") as reads:
        r = results(add(api, org, sid, [f"p-{i}" for i in range(50, 350)]))
        assert r == {"invalid_minerva_pids": [], "n_redundant_additions": 50, "n_added": 250, "new_current_size": 350}
        # every batch came back half done at least once and was finished by retries
        assert writes.calls > 2 * 12 and reads.calls > 2 * 4
        r = results(remove(api, org, sid, [f"p-{i}" for i in range(0, 350, 2)]))
        assert r["n_deleted"] == 175 and r["new_current_size"] == 175
    assert active_count(sid) == 175 == size(org, sid)
    ledger_is_exact(sid)


# ------------------------------------------------------------------ a request that cannot finish


def test_persistent_throttling_is_503_with_retry_after_and_releases_the_lease(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-old"]))
    with inject("BatchWriteItem", THROTTLED, after=3):
        resp = add(api, org, sid, [f"p-{i}" for i in range(500)], headers={"Idempotency-Key": "k-throttle"})
    assert_error(resp, 503)
    assert int(resp.headers["Retry-After"]) >= 1
    state = segment_item(org, sid)
    assert "lease_owner" not in state and "lease_until" not in state  # released, not left to expire
    assert state["size_dirty"] is True and state["current_size"] == 1  # partly written: the next writer recounts
    written = active_count(sid) - 1
    assert 0 < written < 500

    retry = add(api, org, sid, [f"p-{i}" for i in range(500)], headers={"Idempotency-Key": "k-throttle"})
    assert results(retry) == {
        "invalid_minerva_pids": [],
        "n_redundant_additions": 0,
        "n_added": 500,
        "new_current_size": 501,
    }
    assert segment_item(org, sid)["size_dirty"] is False
    assert active_count(sid) == 501 == size(org, sid)

    assert raw_size(org.org_id, sid) == 501 == raw_active_count(sid)
    assert Counter(change for _, change in ledger(sid)) == {"added": 501}
    ledger_is_exact(sid)
    # a third call with the same key and body replays the completed response
    assert (
        add(api, org, sid, [f"p-{i}" for i in range(500)], headers={"Idempotency-Key": "k-throttle"}).json == retry.json
    )


def test_a_retry_without_the_key_counts_earlier_work_as_redundant(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    with inject("BatchWriteItem", THROTTLED, after=2):
        assert add(api, org, sid, [f"p-{i}" for i in range(200)]).status == 503
    written = active_count(sid)
    r = results(add(api, org, sid, [f"p-{i}" for i in range(200)]))
    assert r["n_added"] == 200 - written and r["n_redundant_additions"] == written and r["new_current_size"] == 200


def test_unprocessed_ledger_items_then_a_retry_logs_every_change_exactly_once(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten ledger items from 100 PIDs: with the real chunk (1,000 PIDs an item) this would take
    # 10,000 member writes through moto to say the same thing.
    monkeypatch.setattr(planning, "LEDGER_CHUNK", 10)
    sid = new_segment(api, org)
    pids = [f"p-{i}" for i in range(100)]  # 100 member items, then 10 ledger items of which half stick
    with partial("BatchWriteItem", when=is_ledger, stuck=True):
        resp = add(api, org, sid, pids, headers={"Idempotency-Key": "k-ledger"})
    assert_error(resp, 503)
    assert active_count(sid) == 100 and 0 < len(ledger(sid)) < 100
    retry = results(add(api, org, sid, pids, headers={"Idempotency-Key": "k-ledger"}))
    assert retry == {"invalid_minerva_pids": [], "n_redundant_additions": 0, "n_added": 100, "new_current_size": 100}
    assert sorted(ledger(sid)) == sorted((p, "added") for p in pids)


def test_a_failed_remove_is_completed_by_its_retry(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(300)]))
    body = [f"p-{i}" for i in range(0, 300, 3)] + ["p-never"]  # 100 members (4 batches) and a stranger
    with inject("BatchWriteItem", THROTTLED, after=2):
        assert_error(remove(api, org, sid, body, headers={"Idempotency-Key": "k-remove"}), 503)
    assert 200 < active_count(sid) < 300
    r = results(remove(api, org, sid, body, headers={"Idempotency-Key": "k-remove"}))
    assert r == {"invalid_minerva_pids": [], "n_deleted": 100, "new_current_size": 200}
    assert active_count(sid) == 200 == size(org, sid) and member(sid, "p-never") is None
    assert Counter(change for _, change in ledger(sid)) == {"added": 300, "removed": 100}
    ledger_is_exact(sid)


# ------------------------------------------------------------------ idempotency


def test_same_key_same_body_replays_and_applies_nothing_twice(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    headers = {"Idempotency-Key": "k-1"}
    first = add(api, org, sid, ["p-1", "p-2"], headers=headers)
    results(remove(api, org, sid, ["p-1"]))
    again = add(api, org, sid, ["p-1", "p-2"], headers=headers)
    assert again.status == 200 and again.json == first.json  # the first response, p-1 not re-added
    assert member(sid, "p-1")["active"] is False and size(org, sid) == 1
    r1 = remove(api, org, sid, ["p-2"], headers={"Idempotency-Key": "k-1"})  # keys are per operation
    assert results(r1)["n_deleted"] == 1
    assert remove(api, org, sid, ["p-2"], headers={"Idempotency-Key": "k-1"}).json == r1.json


def test_same_key_different_body_is_422(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    headers = {"Idempotency-Key": "k-2"}
    results(add(api, org, sid, ["p-1"], headers=headers))
    assert_error(
        add(api, org, sid, ["p-2"], headers=headers),
        422,
        "Idempotency-Key was already used with a different request body",
    )
    assert member(sid, "p-2") is None
    results(remove(api, org, sid, ["p-1"], headers=headers))
    assert_error(remove(api, org, sid, ["p-1", "p-3"], headers=headers), 422)


def test_idempotency_keys_are_per_org(api: Api, org: Org, other_org: Org) -> None:
    mine, theirs = new_segment(api, org), new_segment(api, other_org)
    headers = {"Idempotency-Key": "shared"}
    assert results(add(api, org, mine, ["p-1"], headers=headers))["n_added"] == 1
    assert results(add(api, other_org, theirs, ["p-1"], headers=headers))["n_added"] == 1


# ------------------------------------------------------------------ the lease


def set_lease(org: Org, segment_id: str, *, owner: str, until_ms: int, dirty: bool) -> None:
    dynamo.call(
        "update_item",
        TableName=dynamo.table(),
        Key=keys.segment_key(org.org_id, segment_id),
        UpdateExpression="SET lease_owner = :o, lease_until = :u, size_dirty = :d",
        ExpressionAttributeValues=dynamo.values(o=owner, u=until_ms, d=dirty),
    )


def test_a_crashed_holder_is_recounted_by_the_next_writer(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2"]))
    # A holder died after writing three members and removing one, before its commit.
    set_lease(org, sid, owner="req_dead", until_ms=int(time.time() * 1000) - 1, dirty=True)
    dynamo.put_items(
        [
            members_store.member_item(
                {
                    "org_id": org.org_id,
                    "segment_id": sid,
                    "minerva_pid": p,
                    "active": True,
                    "first_added_at": "2024-01-01T00:00:00.000000Z",
                    "last_added_at": "2024-01-01T00:00:00.000000Z",
                    "last_op": "added#dead@x",
                }
            )
            for p in ("p-3", "p-4", "p-5")
        ]
        + [
            members_store.member_item(
                {
                    "org_id": org.org_id,
                    "segment_id": sid,
                    "minerva_pid": "p-1",
                    "active": False,
                    "first_added_at": "x",
                    "last_added_at": "x",
                    "last_op": "removed#dead@x",
                }
            )
        ]
    )
    assert size(org, sid) == 2  # stale
    r = results(add(api, org, sid, ["p-5", "p-6"]))
    assert r == {"invalid_minerva_pids": [], "n_redundant_additions": 1, "n_added": 1, "new_current_size": 5}
    assert active_count(sid) == 5 == size(org, sid)

    assert raw_size(org.org_id, sid) == 5 == raw_active_count(sid)
    assert segment_item(org, sid)["size_dirty"] is False


def test_a_live_lease_makes_writers_wait_then_503(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASE_WAIT_SECONDS", "0.3")
    store.reset()
    sid = new_segment(api, org)
    set_lease(org, sid, owner="req_busy", until_ms=int(time.time() * 1000) + 60_000, dirty=True)
    started = time.monotonic()
    resp = add(api, org, sid, ["p-1"])
    assert time.monotonic() - started >= 0.3
    assert_error(resp, 503)
    assert resp.headers["Retry-After"]
    assert member(sid, "p-1") is None and segment_item(org, sid)["lease_owner"] == "req_busy"


def test_a_waiting_writer_proceeds_when_the_lease_is_released(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASE_WAIT_SECONDS", "10")
    store.reset()
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    set_lease(org, sid, owner="req_other", until_ms=int(time.time() * 1000) + 60_000, dirty=False)
    timer = threading.Timer(0.3, lease.release, args=(org.org_id, sid), kwargs={"owner": "req_other", "dirty": False})
    timer.start()
    try:
        r = results(add(api, org, sid, ["p-2"]))
    finally:
        timer.join()
    assert r["n_added"] == 1 and r["new_current_size"] == 2


def test_an_expired_clean_lease_is_taken_over_without_a_recount(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    set_lease(org, sid, owner="req_gone", until_ms=int(time.time() * 1000) - 1, dirty=False)
    with watch("Query", when=is_count) as recounts:
        assert results(add(api, org, sid, ["p-2"]))["new_current_size"] == 2
    assert recounts.hits == 0


def test_a_store_error_while_holding_the_lease_releases_it(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert add(api, org, sid, ["p-0"]).status == 200  # a first fill reads nothing; the next add reads
    with inject("BatchGetItem", "ValidationException", message="unexpected") as fault:
        resp = add(api, org, sid, ["p-1"])
    assert fault.hits == 1
    assert_error(resp, 500, "Internal server error")
    assert "unexpected" not in resp.text
    state = segment_item(org, sid)
    assert "lease_owner" not in state and state["size_dirty"] is False  # nothing was written: still exact
