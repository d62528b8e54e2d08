"""Rule membership where production fails: a crash between the member writes and the lease
commit (the stream retry and the redelivered rebuild chunk leave the count exact), and a rebuild
chunk racing a live change of a record it read (the interleavings forced)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from helpers.faults import inject
from helpers.rules import Rig, members_of, profile, rig_fixture, sheep_segment  # noqa: F401 - `rig`
from helpers.signals import REGION, ingest, signals_fixture  # noqa: F401 - the `signals` fixture

from conftest import Api, Org
from segments.store import keys, people

PID = "p-a1b2c3d4e5f6"
GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]


def times(n: int) -> str:
    return f"2024-01-15T10:30:{n:02d}.000000Z"


def stored_segment(org: Org, segment_id: str) -> dict[str, Any]:
    client = boto3.client("dynamodb", region_name=REGION)
    item = client.get_item(TableName="SegmentsTable", Key=keys.segment_key(org.org_id, segment_id))["Item"]
    return {
        "current_size": int(item["current_size"]["N"]),
        "size_dirty": item.get("size_dirty", {}).get("BOOL"),
        "leased": "lease_owner" in item,
    }


def history(api: Api, org: Org, segment_id: str) -> list[tuple[str, str]]:
    resp = api.get(f"/v2/segments/{segment_id}/history", key=org.key, query={"limit": 1000})
    assert resp.status == 200, resp.text
    return [(e["minerva_pid"], e["change"]) for e in resp.json["results"]["items"]]


def active(segment_id: str) -> list[str]:
    """The segment's active member items, read from the table (not through the size)."""
    from segments.store import members

    return [m["minerva_pid"] for m in members.active_page(segment_id, after=None, want=1000)]


def is_commit(request: dict[str, Any]) -> bool:
    return "current_size" in request.get("UpdateExpression", "")


def is_release(request: dict[str, Any]) -> bool:
    return "size_dirty = :dirty" in request.get("UpdateExpression", "")


def expire_lease(org: Org, segment_id: str) -> None:
    """The lease of a writer that died holding it, once lease_seconds have passed."""
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName="SegmentsTable",
        Key=keys.segment_key(org.org_id, segment_id),
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


# ------------------------------------------------------------------ a crash before the commit


@pytest.mark.parametrize("death", ["commit failed, lease released", "died holding the lease"])
@pytest.mark.parametrize("change", ["joins", "leaves"])
def test_the_stream_retry_after_a_crash_before_the_commit_leaves_the_count_exact(
    api: Api, org: Org, rig: Rig, death: str, change: str
) -> None:
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    ingest(profile("p-other1", org, {"tier": "gold"}, observed_at=times(0)))
    if change == "leaves":
        ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    rig.settle()
    before = stored_segment(org, segment_id)["current_size"]
    ingest(profile(PID, org, {"tier": "gold" if change == "joins" else "silver"}, observed_at=times(2)))
    records = rig.stream()
    dies = is_commit if death.startswith("commit") else (lambda r: is_commit(r) or is_release(r))
    with inject("UpdateItem", "ValidationException", when=dies) as fault:
        assert rig.rule_function(records)["batchItemFailures"] != []
    assert fault.hits >= 1
    # the member item and the ledger entry are written, the size is not
    assert (PID in active(segment_id)) is (change == "joins")
    crashed = stored_segment(org, segment_id)
    assert crashed["size_dirty"] is True and crashed["current_size"] == before
    if death == "died holding the lease":
        assert crashed["leased"]
        expire_lease(org, segment_id)

    assert rig.rule_function(records)["batchItemFailures"] == []  # Lambda retries the batch
    after = stored_segment(org, segment_id)
    expected = len(members_of(api, org, segment_id))
    assert after == {"current_size": expected, "size_dirty": False, "leased": False}
    assert expected == before + (1 if change == "joins" else -1)
    changes = [c for p, c in history(api, org, segment_id) if p == PID]
    assert changes == (["added"] if change == "joins" else ["added", "removed"])  # logged once


def test_a_redelivered_rebuild_chunk_after_a_crash_before_the_commit_leaves_the_count_exact(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBUILD_CHUNK_SIZE", "50")
    gold = []
    for i in range(12):
        pid = f"p-c{i:04d}"
        people.put(org.org_id, pid, {"tier": "gold" if i % 3 else "silver"})
        gold += [pid] if i % 3 else []
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    records = rig.stream()
    assert rig.rule_function(records)["batchItemFailures"] == []
    [body] = rig.messages()
    with inject("UpdateItem", "ValidationException", when=is_commit, times=1):
        assert rig.rebuild_chunk(body) != []
    assert active(segment_id) == sorted(gold)  # written; the size is not (the listing reads 0 members)
    assert stored_segment(org, segment_id) == {"current_size": 0, "size_dirty": True, "leased": False}
    assert rig.rebuild_chunk(body, receive_count=2) == []  # SQS delivers it again
    assert stored_segment(org, segment_id) == {"current_size": len(gold), "size_dirty": False, "leased": False}
    progress = api.get(f"/v2/segments/{segment_id}", key=org.key).json["build_progress"]
    assert progress["added"] == len(gold)  # counted once


# ------------------------------------------------------------------ a rebuild racing a live change


def live_change(rig: Rig, org: Org, pid: str, tier: str, n: int) -> None:
    """A profile change of `pid`, judged at once by the live path (RuleMembershipFunction)."""
    ingest(profile(pid, org, {"tier": tier}, observed_at=times(n)))
    assert rig.rule_function(rig.stream())["batchItemFailures"] == []


def run_rebuild(rig: Rig) -> None:
    """The rebuild chain to its end: at most its 3 chunks (people, members, and one spare)."""
    for _ in range(4):
        bodies = rig.messages()
        if not bodies:
            return
        for body in bodies:
            assert rig.rebuild_chunk(body) == []
    raise AssertionError("the rebuild did not end within the chunks it needs")


def once(action: Callable[[], None]) -> Callable[[], None]:
    done = {"n": 0}

    def run() -> None:
        if not done["n"]:
            done["n"] += 1
            action()

    return run


@pytest.mark.parametrize(
    ("first", "then", "member"),
    [
        ("gold", "silver", False),  # the live path finds nothing to change; the chunk read gold
        ("silver", "gold", True),  # the live path adds; the chunk read silver
    ],
)
def test_a_live_change_after_the_chunk_read_the_record_wins(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch, first: str, then: str, member: bool
) -> None:
    ingest(profile(PID, org, {"tier": first}, observed_at=times(1)))
    ingest(profile("p-other1", org, {"tier": "gold"}, observed_at=times(2)))
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    assert rig.rule_function(rig.stream())["batchItemFailures"] == []

    from segments.store import rule_index

    real_page = rule_index.people_page
    change = once(lambda: live_change(rig, org, PID, then, 3))

    def page_then_live_change(*args: Any, **kwargs: Any) -> Any:
        found = real_page(*args, **kwargs)
        assert any(r["minerva_pid"] == PID and r["tier"] == first for r in found[0])
        change()  # the record changes, and the live path judges it, before the chunk writes
        return found

    monkeypatch.setattr(rule_index, "people_page", page_then_live_change)
    run_rebuild(rig)
    assert (PID in members_of(api, org, segment_id)) is member
    assert "p-other1" in members_of(api, org, segment_id)
    # never the older verdict, not even for a moment: the ledger holds the live path's change only
    assert [c for p, c in history(api, org, segment_id) if p == PID] == (["added"] if member else [])
    assert stored_segment(org, segment_id)["current_size"] == len(members_of(api, org, segment_id))


def test_a_live_change_while_the_chunk_writes_is_judged_again_after_the_writes(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    assert rig.rule_function(rig.stream())["batchItemFailures"] == []

    from segments.usecases import members

    real_add = members.add_members
    change = once(lambda: live_change(rig, org, PID, "silver", 3))

    def change_then_add(actor: Any, segment: str, pids: Any, **kwargs: Any) -> Any:
        if str(kwargs.get("idempotency_key", "")).startswith("rb_"):
            change()  # after the chunk's last read, before its write: the live path finds nothing to do
        return real_add(actor, segment, pids, **kwargs)

    monkeypatch.setattr(members, "add_members", change_then_add)
    run_rebuild(rig)
    assert members_of(api, org, segment_id) == []
    assert [c for p, c in history(api, org, segment_id) if p == PID] == ["added", "removed"]
    assert stored_segment(org, segment_id)["current_size"] == 0
