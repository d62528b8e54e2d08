"""What moto cannot show, tested anyway: a lease lost before commit, the strongly consistent reads,
transactions cancelled by TransactionConflict, and the rename/delete race of PATCH and DELETE.

moto ignores ConsistentRead, never reports TransactionConflict, and the test harness serialises
its writes; so the calls are watched and answered here with botocore `before-call` hooks on the
store's client, while the real routes run. Every interleaving is driven by a hook that changes
the table (through a separate client) right before the call it races, never by sleeping.
Results are checked on the raw table, spelled as keys.py documents it, not through the store.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.raw_table import TABLE, raw, raw_active_count, raw_item, raw_org_items, raw_segment, segment_key

from conftest import ROOT, Api, ApiResponse, Org, template
from segments import auth, store
from segments.models import name_key
from segments.store import dynamo
from segments.usecases import segments as segment_usecases
from tools.local_stack import Functions, Gateway

CREATE = "/v2/segments/create"
ADD = "/v2/segments/members/add"
REMOVE = "/v2/segments/members/remove"
Hook = Callable[..., Any]


@pytest.fixture(autouse=True)
def recorded_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The store's backoffs, by attempt number, without sleeping (retries happen as before)."""
    attempts: list[int] = []
    lock = threading.Lock()

    def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> None:
        with lock:
            attempts.append(attempt)

    monkeypatch.setattr(dynamo, "backoff", backoff)
    return attempts


# ------------------------------------------------------------------ the raw table


def lock_key(org_id: str, name: str) -> dict[str, Any]:
    return {"pk": {"S": f"ORG#{org_id}"}, "sk": {"S": f"NAME#{name_key(name)}"}}


def set_lease_fields(org_id: str, segment_id: str, **fields: Any) -> None:
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    raw().update_item(
        TableName=TABLE,
        Key=segment_key(org_id, segment_id),
        UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":f{i}": dynamo.to_item({"v": v})["v"] for i, v in enumerate(fields.values())},
    )


def rename_behind(org_id: str, segment_id: str, old_name: str, new_name: str) -> None:
    """What a concurrent rename commits: the segment's name and name key, and its lock moved."""
    raw().transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": segment_key(org_id, segment_id),
                    "UpdateExpression": "SET #n = :n, name_key = :k",
                    "ExpressionAttributeNames": {"#n": "name"},
                    "ExpressionAttributeValues": {":n": {"S": new_name}, ":k": {"S": name_key(new_name)}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": lock_key(org_id, old_name)}},
            {"Put": {"TableName": TABLE, "Item": {**lock_key(org_id, new_name), "segment_id": {"S": segment_id}}}},
        ]
    )


def delete_behind(org_id: str, segment_id: str, name: str) -> None:
    """What a concurrent DELETE commits: record_state=deleted and the name lock removed."""
    raw().transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": segment_key(org_id, segment_id),
                    "UpdateExpression": "SET record_state = :d",
                    "ExpressionAttributeValues": {":d": {"S": "deleted"}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": lock_key(org_id, name)}},
        ]
    )


# ------------------------------------------------------------------ the store's client, watched


def on(operation: str, hook: Hook) -> Hook:
    """Run `hook(request)` before each `operation` call of the store's client; a non-None return
    value (see `refuse`) answers the call instead of DynamoDB."""

    def before_call(params: dict[str, Any], **_: Any) -> Any:
        return hook(json.loads(params["body"]))

    dynamo.client().meta.events.register_first(f"before-call.dynamodb.{operation}", before_call)
    return before_call


def meanwhile(operation: str, change: Callable[[], Any], *, key: dict[str, Any] | None = None) -> Counter[str]:
    """Make `change` behind the store's back just before its first `operation` call (on the item
    `key`, when given); the Counter's "n" counts those calls."""
    attempts = Counter[str]()

    def hook(request: dict[str, Any]) -> None:
        if key is None or request["Key"] == key:
            attempts["n"] += 1
            if attempts["n"] == 1:
                change()

    on(operation, hook)
    return attempts


def refuse(code: str, **extra: Any) -> Any:
    """An error answer as DynamoDB sends it (botocore raises it as a ClientError)."""
    return SimpleNamespace(status_code=400, headers={}), {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
        **extra,
    }


def conflict(request: dict[str, Any]) -> Any:
    """TransactWriteItems cancelled by another transaction on its first item (as real DynamoDB does)."""
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
    reasons += [{"Code": "None"}] * (len(request["TransactItems"]) - 1)
    return refuse("TransactionCanceledException", CancellationReasons=reasons)


class Recorder:
    """Every request of some operations, in order."""

    def __init__(self, *operations: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        for operation in operations:
            on(operation, lambda request, op=operation: self.record(op, request))

    def record(self, operation: str, request: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((operation, request))

    def of(self, operation: str, where: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [r for op, r in self.calls if op == operation and where(r)]


# ------------------------------------------------------------------ routes


class Container(Api):
    """The gateway of one Lambda execution environment: its own import of each function. Lambda
    never runs two invocations in one environment at once (a resolver keeps per-request state),
    so concurrent callers each get one."""

    def __init__(self, *functions: str) -> None:
        loaded = Functions(template(), ROOT)
        for logical_id in functions:  # imported here, not by the callers' threads at once
            loaded.handler(logical_id)
        self.gateway = Gateway(template(), ROOT, loaded)


def new_segment(api: Api, org: Org, name: str | None = None) -> str:
    resp = api.post(CREATE, key=org.key, body={"name": name or f"seg {uuid.uuid4().hex[:8]}"})
    assert resp.status == 200, resp.text
    return str(resp.json["segment_id"])


def add(api: Api, org: Org, segment_id: str, pids: list[str], **kw: Any) -> ApiResponse:
    return api.post(ADD, key=org.key, body={"segment_id": segment_id, "minerva_pids": pids}, **kw)


def remove(api: Api, org: Org, segment_id: str, pids: list[str]) -> ApiResponse:
    return api.post(REMOVE, key=org.key, body={"segment_id": segment_id, "minerva_pids": pids})


def results(resp: ApiResponse) -> dict[str, Any]:
    assert resp.status == 200, resp.text
    return dict(resp.json["results"])


def assert_503(resp: ApiResponse) -> None:
    assert resp.status == 503, resp.text
    assert resp.json["status_code"] == 503 and int(resp.headers["Retry-After"]) >= 1


def is_commit(request: dict[str, Any]) -> bool:
    """The lease's commit: the one UpdateItem that sets current_size."""
    return str(request.get("UpdateExpression", "")).startswith("SET current_size")


# ------------------------------------------------------------------ 1. a lease lost before commit


def test_a_writer_whose_lease_passed_to_another_owner_does_not_commit(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2"]))
    taken = Counter[str]()

    def another_owner_takes_over(request: dict[str, Any]) -> None:
        if is_commit(request) and not taken["n"]:
            taken["n"] += 1  # our lease expired meanwhile and another writer took it, live for a minute
            set_lease_fields(org.org_id, sid, lease_owner="req_other", lease_until=int(time.time() * 1000) + 60_000)

    on("UpdateItem", another_owner_takes_over)
    assert_503(add(api, org, sid, ["p-3", "p-4"]))
    assert taken["n"] == 1
    state = raw_segment(org.org_id, sid)
    assert state["current_size"] == 2  # not changed by the writer that lost its lease
    assert state["size_dirty"] is True and state["lease_owner"] == "req_other"  # its lease was not ours to free
    assert raw_active_count(sid) == 4  # the members it wrote are there: the size must be recounted

    set_lease_fields(org.org_id, sid, lease_until=1)  # the other owner dies without committing
    assert results(add(api, org, sid, ["p-5"]))["new_current_size"] == 5  # recounted, then +1
    state = raw_segment(org.org_id, sid)
    assert state["current_size"] == 5 == raw_active_count(sid)
    assert state["size_dirty"] is False and "lease_owner" not in state


def test_a_writer_whose_lease_expired_before_commit_does_not_commit(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    expired = Counter[str]()

    def lease_runs_out(request: dict[str, Any]) -> None:
        if is_commit(request) and not expired["n"]:
            expired["n"] += 1  # still ours, but past lease_until: nobody else took it yet
            set_lease_fields(org.org_id, sid, lease_until=int(time.time() * 1000) - 1000)

    on("UpdateItem", lease_runs_out)
    assert_503(add(api, org, sid, ["p-2", "p-3"]))
    assert expired["n"] == 1
    state = raw_segment(org.org_id, sid)
    assert state["current_size"] == 1 and state["size_dirty"] is True
    assert "lease_owner" not in state  # the writer gave its expired lease back, dirty
    assert raw_active_count(sid) == 3

    assert results(add(api, org, sid, ["p-4"]))["new_current_size"] == 4
    assert raw_segment(org.org_id, sid)["current_size"] == 4 == raw_active_count(sid)


# ------------------------------------------------------------------ 2. strongly consistent reads


def consistent(requests: list[dict[str, Any]]) -> list[bool]:
    return [r.get("ConsistentRead") is True for r in requests]


def member_batch_reads(recorder: Recorder, segment_id: str) -> list[dict[str, Any]]:
    """The BatchGetItem requests (one per table) for member items of the segment."""
    batches = [r["RequestItems"][TABLE] for r in recorder.of("BatchGetItem", lambda r: TABLE in r["RequestItems"])]
    return [b for b in batches if all(k["pk"]["S"] == f"SEG#{segment_id}" for k in b["Keys"])]


def test_the_lease_holder_reads_memberships_strongly_consistent(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))  # a first fill reads nothing
    seen = Recorder("BatchGetItem")
    assert results(add(api, org, sid, [f"p-{i}" for i in range(150)]))["new_current_size"] == 150
    assert results(remove(api, org, sid, ["p-1", "p-2"]))["new_current_size"] == 148
    reads = member_batch_reads(seen, sid)
    assert len(reads) == 3  # 150 keys in two batches, then 2 keys
    assert consistent(reads) == [True] * 3


def test_the_recount_after_a_crash_is_strongly_consistent(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2"]))
    set_lease_fields(org.org_id, sid, lease_owner="req_dead", lease_until=1, size_dirty=True)
    seen = Recorder("Query")
    assert results(add(api, org, sid, ["p-3"]))["new_current_size"] == 3
    counts = seen.of("Query", lambda r: r.get("Select") == "COUNT")
    assert len(counts) == 1 and counts[0]["ExpressionAttributeValues"][":pk"] == {"S": f"SEG#{sid}"}
    assert consistent(counts) == [True]


def test_the_ledger_of_an_interrupted_attempt_is_read_strongly_consistent(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-0"]))

    def refuse_ledger(request: dict[str, Any]) -> Any:
        puts = request["RequestItems"][TABLE]
        if any(p["PutRequest"]["Item"]["sk"]["S"].startswith("LOG#") for p in puts):
            return refuse("ProvisionedThroughputExceededException")
        return None

    hook = on("BatchWriteItem", refuse_ledger)
    headers = {"Idempotency-Key": "k-interrupted"}
    assert_503(add(api, org, sid, ["p-1", "p-2"], headers=headers))  # members written, ledger not
    dynamo.client().meta.events.unregister("before-call.dynamodb.BatchWriteItem", hook)
    assert raw_active_count(sid) == 3

    seen = Recorder("Query")
    r = results(add(api, org, sid, ["p-1", "p-2"], headers=headers))
    assert r["n_added"] == 2 and r["new_current_size"] == 3
    ledger_reads = seen.of(
        "Query", lambda q: q["ExpressionAttributeValues"].get(":prefix", {}).get("S", "").startswith("LOG#")
    )
    assert len(ledger_reads) == 1 and consistent(ledger_reads) == [True]


def segment_reads(recorder: Recorder, org: Org, segment_id: str) -> list[dict[str, Any]]:
    return recorder.of("GetItem", lambda r: r["Key"] == segment_key(org.org_id, segment_id))


def test_patch_and_delete_read_the_live_segment_strongly_consistent(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Before")
    seen = Recorder("GetItem")
    assert api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "After"}).status == 200
    patch_reads = segment_reads(seen, org, sid)
    assert patch_reads and consistent(patch_reads) == [True] * len(patch_reads)
    assert api.patch(f"/v2/segments/{sid}", key=org.key, body={"description": "d"}).status == 200
    assert api.delete(f"/v2/segments/{sid}", key=org.key).status == 200
    reads = segment_reads(seen, org, sid)
    assert len(reads) > len(patch_reads) + 1  # the description change and the delete read it too
    assert consistent(reads) == [True] * len(reads)
    assert raw_segment(org.org_id, sid)["record_state"] == "deleted"


def test_an_api_key_is_read_by_id_strongly_consistent(api: Api, org: Org) -> None:
    seen = Recorder("GetItem")
    auth.revoke_api_key(org.key_id)
    by_id = seen.of("GetItem", lambda r: r["Key"] == {"pk": {"S": f"KEYID#{org.key_id}"}, "sk": {"S": "KEYID"}})
    assert len(by_id) == 1 and consistent(by_id) == [True]
    assert api.post(CREATE, key=org.key, body={"name": "x"}).status == 401


# ------------------------------------------------------------------ 3. TransactionConflict


def conflicting_first(attempts: int, counts: Counter[str], lock: threading.Lock) -> Hook:
    """Cancel the first `attempts` attempts of each transaction (known by its items: botocore gives
    each call a ClientRequestToken of its own when the caller gives none) with TransactionConflict."""

    def hook(request: dict[str, Any]) -> Any:
        ident = json.dumps(request["TransactItems"], sort_keys=True)
        with lock:
            counts[ident] += 1
            n = counts[ident]
        return conflict(request) if n <= attempts else None

    return hook


def test_concurrent_creates_cancelled_by_conflicts_answer_one_200_and_the_rest_404(
    api: Api, org: Org, recorded_backoff: list[int]
) -> None:
    callers, conflicts = 20, 3
    counts, lock = Counter[str](), threading.Lock()
    on("TransactWriteItems", conflicting_first(conflicts, counts, lock))
    barrier = threading.Barrier(callers)
    containers = [Container("ApiKeyAuthorizerFunction", "CreateSegmentFunction") for _ in range(callers)]

    def create(n: int) -> ApiResponse:
        barrier.wait()
        return containers[n].post(CREATE, key=org.key, body={"name": "Contended"})

    with ThreadPoolExecutor(max_workers=callers) as pool:
        out = list(pool.map(create, range(callers)))
    statuses = [r.status for r in out]
    assert statuses.count(200) == 1 and statuses.count(404) == callers - 1, statuses
    assert {r.json["error"] for r in out if r.status == 404} == {"Segment name Contended already exists"}
    assert len(counts) == callers and set(counts.values()) == {conflicts + 1}  # each caller retried, then decided
    assert Counter(recorded_backoff) == {n: callers for n in range(1, conflicts + 1)}
    winner = next(r.json["segment_id"] for r in out if r.status == 200)
    assert [s["segment_id"] for s in raw_org_items(org.org_id, "SEG#")] == [winner]
    assert [lock["segment_id"] for lock in raw_org_items(org.org_id, "NAME#")] == [winner]


def test_a_create_that_always_meets_a_conflict_is_503_after_bounded_attempts(
    api: Api, org: Org, recorded_backoff: list[int]
) -> None:
    attempts = Counter[str]()

    def always(request: dict[str, Any]) -> Any:
        attempts["n"] += 1
        return conflict(request)

    on("TransactWriteItems", always)
    assert_503(api.post(CREATE, key=org.key, body={"name": "Never"}))
    assert 1 < attempts["n"] == dynamo.CONFLICT_ATTEMPTS
    assert recorded_backoff == list(range(1, dynamo.CONFLICT_ATTEMPTS))  # a growing backoff between attempts
    assert raw_org_items(org.org_id, "SEG#") == [] and raw_org_items(org.org_id, "NAME#") == []


def test_a_conflict_on_the_lease_commit_is_retried_and_frees_the_lease(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASE_WAIT_SECONDS", "0")  # a writer that finds the lease held fails at once
    store.reset()
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    commits = Counter[str]()

    def conflicting_commit(request: dict[str, Any]) -> Any:
        if not is_commit(request):
            return None
        commits["n"] += 1
        return refuse("TransactionConflictException") if commits["n"] <= 2 else None

    on("UpdateItem", conflicting_commit)
    assert results(add(api, org, sid, ["p-1", "p-2", "p-3"]))["new_current_size"] == 3
    assert commits["n"] == 3
    state = raw_segment(org.org_id, sid)
    assert "lease_owner" not in state and "lease_until" not in state
    assert state["size_dirty"] is False and state["current_size"] == 3 == raw_active_count(sid)
    assert results(add(api, org, sid, ["p-4"]))["new_current_size"] == 4  # the lease was free at once
    assert raw_segment(org.org_id, sid)["current_size"] == 4


def test_rename_and_delete_cancelled_by_conflicts_still_succeed(
    api: Api, org: Org, recorded_backoff: list[int]
) -> None:
    sid = new_segment(api, org, "First")
    counts, lock = Counter[str](), threading.Lock()
    hook = on("TransactWriteItems", conflicting_first(3, counts, lock))
    resp = api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "Second"})
    assert resp.status == 200, resp.text
    assert resp.json["name"] == "Second" and list(counts.values()) == [4]
    assert raw_segment(org.org_id, sid)["name"] == "Second"
    assert raw_item(lock_key(org.org_id, "First")) is None
    assert raw_item(lock_key(org.org_id, "Second"))["segment_id"] == sid  # type: ignore[index]

    counts.clear()
    resp = api.delete(f"/v2/segments/{sid}", key=org.key)
    assert resp.status == 200, resp.text
    assert list(counts.values()) == [4]
    assert raw_segment(org.org_id, sid)["record_state"] == "deleted"
    assert raw_item(lock_key(org.org_id, "Second")) is None
    dynamo.client().meta.events.unregister("before-call.dynamodb.TransactWriteItems", hook)
    assert recorded_backoff == [1, 2, 3, 1, 2, 3]


def test_a_description_change_that_meets_a_conflict_is_retried(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Described")
    seen = Counter[str]()

    def conflicting(request: dict[str, Any]) -> Any:
        if request["Key"] != segment_key(org.org_id, sid):
            return None
        seen["n"] += 1
        return refuse("TransactionConflictException") if seen["n"] <= 2 else None

    on("UpdateItem", conflicting)
    resp = api.patch(f"/v2/segments/{sid}", key=org.key, body={"description": "now"})
    assert resp.status == 200 and resp.json["description"] == "now", resp.text
    assert seen["n"] == 3 and raw_segment(org.org_id, sid)["description"] == "now"


# ------------------------------------------------------------------ 4. rename versus delete


def test_a_patch_that_finds_the_name_changed_reads_again_and_succeeds(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Original")
    attempts = meanwhile("TransactWriteItems", lambda: rename_behind(org.org_id, sid, "Original", "Concurrent"))
    resp = api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "Mine"})
    assert resp.status == 200, resp.text
    assert resp.json["name"] == "Mine" and attempts["n"] == 2
    assert raw_segment(org.org_id, sid)["name_key"] == name_key("Mine")
    assert raw_item(lock_key(org.org_id, "Mine"))["segment_id"] == sid  # type: ignore[index]
    assert raw_item(lock_key(org.org_id, "Concurrent")) is None  # the lock it found is the one it freed
    assert raw_item(lock_key(org.org_id, "Original")) is None
    assert [lock["segment_id"] for lock in raw_org_items(org.org_id, "NAME#")] == [sid]


def test_a_description_patch_that_finds_the_name_changed_reads_again(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Described")
    attempts = meanwhile(
        "UpdateItem", lambda: rename_behind(org.org_id, sid, "Described", "Renamed"), key=segment_key(org.org_id, sid)
    )
    resp = api.patch(f"/v2/segments/{sid}", key=org.key, body={"description": "d"})
    assert resp.status == 200, resp.text
    assert (resp.json["name"], resp.json["description"], attempts["n"]) == ("Renamed", "d", 2)


def test_a_patch_racing_a_delete_is_404(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Doomed")
    attempts = meanwhile("TransactWriteItems", lambda: delete_behind(org.org_id, sid, "Doomed"))
    resp = api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "Saved"})
    assert resp.status == 404, resp.text
    assert resp.json["error"] == "Segment not found" and attempts["n"] == 1
    assert raw_item(lock_key(org.org_id, "Saved")) is None and raw_org_items(org.org_id, "NAME#") == []
    assert raw_segment(org.org_id, sid)["record_state"] == "deleted"


def test_a_delete_racing_a_rename_deletes_the_renamed_segment(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Going")
    attempts = meanwhile("TransactWriteItems", lambda: rename_behind(org.org_id, sid, "Going", "Gone"))
    resp = api.delete(f"/v2/segments/{sid}", key=org.key)
    assert resp.status == 200, resp.text
    assert attempts["n"] == 2 and raw_segment(org.org_id, sid)["record_state"] == "deleted"
    assert raw_org_items(org.org_id, "NAME#") == []  # the renamed lock was freed, not left behind


def test_a_patch_that_keeps_finding_the_record_changed_is_503(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Busy 0")
    attempts = Counter[str]()

    def renamed_every_time(request: dict[str, Any]) -> None:
        attempts["n"] += 1
        rename_behind(org.org_id, sid, f"Busy {attempts['n'] - 1}", f"Busy {attempts['n']}")

    on("TransactWriteItems", renamed_every_time)
    assert_503(api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "Wanted"}))
    assert 1 < attempts["n"] == segment_usecases.STALE_RETRIES
    last = f"Busy {segment_usecases.STALE_RETRIES}"
    assert raw_segment(org.org_id, sid)["name"] == last
    assert [lock["sk"] for lock in raw_org_items(org.org_id, "NAME#")] == [f"NAME#{name_key(last)}"]


def test_a_create_retried_after_a_lost_response_is_its_own_success_not_a_taken_name(org: Org) -> None:
    """The SDK retries a TransactWriteItems whose response was lost (a read timeout); if the first
    attempt was applied, the retry meets its own name lock. That is the create succeeding, not
    "already exists" (whatever the store makes of ClientRequestToken); another segment with the
    name still gets NameTaken."""
    from segments import errors
    from segments.models import Actor, NewSegment, Segment, name_key
    from segments.store import segments as segment_store

    actor = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_" + "0" * 32)
    at = "2024-01-01T00:00:00.000000Z"
    first = Segment(
        segment_id=str(uuid.uuid4()),
        org_id=actor.org_id,
        bucket=actor.bucket,
        created_at=at,
        updated_at=at,
        **NewSegment(name="Retried").model_dump(),
    )
    segment_store.put_with_name(first.model_dump(), name_key(first.name))
    segment_store.put_with_name(first.model_dump(), name_key(first.name))  # the retry: no error
    other = first.model_copy(update={"segment_id": str(uuid.uuid4())})
    with pytest.raises(errors.NameTaken):
        segment_store.put_with_name(other.model_dump(), name_key(other.name))
    assert raw_segment(org.org_id, first.segment_id)["name"] == "Retried"
