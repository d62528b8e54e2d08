"""Rebuilds of rule segments through RebuildQueue and RebuildFunction: chunks, readiness, exact
members, a killed chunk redelivered, a newer definition superseding an older rebuild."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.rules import Rig, members_of, redefine, rig_fixture, segment, sheep_segment  # noqa: F401 - `rig`
from helpers.signals import REGION, signals_fixture  # noqa: F401 - the `signals` fixture

from conftest import Api, Org
from segments.store import people

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
N = 60
CHUNK = 7


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBUILD_CHUNK_SIZE", str(CHUNK))


def add_by_rule(org: Org, segment_id: str, *pids: str) -> None:
    from segments.models import Actor
    from segments.usecases import members

    members.add_members(
        Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_" + "1" * 32, reason="rule"), segment_id, list(pids)
    )


def history_of(api: Api, org: Org, segment_id: str) -> list[tuple[str, str]]:
    resp = api.get(f"/v2/segments/{segment_id}/history", key=org.key, query={"limit": 1000})
    assert resp.status == 200, resp.text
    return [(e["minerva_pid"], e["change"]) for e in resp.json["results"]["items"]]


def seed(org: Org, n: int = N) -> list[str]:
    """n person records, every third gold; the gold PIDs."""
    gold = []
    for i in range(n):
        pid = f"p-r{i:04d}"
        tier = "gold" if i % 3 == 0 else "silver"
        people.put(org.org_id, pid, {"tier": tier})
        if tier == "gold":
            gold.append(pid)
    return gold


def gold_rebuild_started(api: Api, org: Org, rig: Rig) -> tuple[list[str], str]:
    """Seed the people, create the Gold segment and run the rule function over the stream, which
    starts its rebuild: (the gold PIDs, the segment id)."""
    gold = seed(org)
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.stream()
    assert rig.rule_function(rig.records)["batchItemFailures"] == []
    return gold, segment_id


# What a correct rebuild of N records needs: a chunk per CHUNK records, a chunk per CHUNK members
# (at most N) plus the last, empty one. A chain that never ends fails at the next chunk.
MAX_CHUNKS = 2 * -(-N // CHUNK) + 1


def run_chain(rig: Rig, *, kill: Any = None) -> list[str]:
    """Run the rebuild messages one by one (the stream first); `kill(body)` may make one fail
    before it is redelivered. The chunks run ("phase:chunk"), at most MAX_CHUNKS."""
    seen: list[str] = []
    while len(seen) <= MAX_CHUNKS:
        records = rig.stream()
        if records:
            assert rig.rule_function(records)["batchItemFailures"] == []
        bodies = rig.messages()
        if not bodies and not records:
            return seen
        for body in bodies:
            if kill is not None and kill(body):
                assert rig.rebuild_chunk(body) != []  # failed: the queue delivers it again
                assert rig.rebuild_chunk(body, receive_count=2) == []
            else:
                assert rig.rebuild_chunk(body) == []
            seen.append(f"{body['phase']}:{body['chunk']}")
    raise AssertionError(f"the rebuild did not end within the {MAX_CHUNKS} chunks it needs: {seen}")


def test_a_rebuild_in_chunks_ends_ready_with_exact_members(api: Api, org: Org, rig: Rig) -> None:
    gold = seed(org)
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    # members that must go: one without a person record, one that does not match (written as the
    # rules engine writes: by hand, dynamic segments take no members)
    add_by_rule(org, segment_id, "p-norecord", "p-r0001")
    seen = run_chain(rig)
    assert members_of(api, org, segment_id) == sorted(gold)
    view = segment(api, org, segment_id)
    assert view["current_size"] == len(gold)
    assert view["build_state"] == "ready"
    progress = view["build_progress"]
    assert (progress["scanned"], progress["matched"], progress["phase"]) == (N, len(gold), "done")
    assert progress["added"] == len(gold) and progress["removed"] == 2
    people_chunks = -(-N // CHUNK)
    assert seen[:people_chunks] == [f"people:{i}" for i in range(people_chunks)]
    assert seen[people_chunks:] and all(s.startswith("members:") for s in seen[people_chunks:])


def test_the_segment_reads_building_with_progress_while_it_converges(api: Api, org: Org, rig: Rig) -> None:
    seed(org)
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.stream()
    records = rig.records[-50:]
    assert rig.rule_function(records)["batchItemFailures"] == []
    body = rig.messages()[0]
    assert rig.rebuild_chunk(body) == []
    view = segment(api, org, segment_id)
    assert view["build_state"] == "building"
    assert view["build_progress"]["scanned"] == CHUNK
    assert 0 < view["current_size"] <= CHUNK


@pytest.mark.parametrize("where", ["after the member writes", "after recording progress"])
def test_a_killed_chunk_is_redone_with_nothing_doubled_or_missed(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    gold = seed(org)
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    from segments import queues
    from segments.store import rule_index

    killed = {"done": False}
    real_progress, real_send = rule_index.record_progress, queues.send

    def dying_progress(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("chunk") == 3 and not killed["done"]:
            killed["done"] = True
            raise RuntimeError("killed after the member writes")
        return real_progress(*args, **kwargs)

    def dying_send(url: str, body: Any) -> None:
        if body.get("chunk") == 4 and not killed["done"]:
            killed["done"] = True
            raise RuntimeError("killed after recording progress")
        real_send(url, body)

    if where == "after the member writes":
        monkeypatch.setattr(rule_index, "record_progress", dying_progress)
    else:
        monkeypatch.setattr(queues, "send", dying_send)
    run_chain(rig, kill=lambda body: body["chunk"] == 3 and not killed["done"])
    assert killed["done"]
    assert members_of(api, org, segment_id) == sorted(gold)
    view = segment(api, org, segment_id)
    assert view["current_size"] == len(gold) and view["build_state"] == "ready"
    progress = view["build_progress"]
    assert (progress["scanned"], progress["matched"], progress["added"], progress["removed"]) == (
        N,
        len(gold),
        len(gold),
        0,
    )
    ledger_added = [
        e["minerva_pid"]
        for e in api.get(f"/v2/segments/{segment_id}/history", key=org.key, query={"limit": 1000}).json["results"][
            "items"
        ]
    ]
    assert sorted(ledger_added) == sorted(gold)  # each change logged once


def test_a_copy_of_a_done_chunk_is_dropped_and_does_not_fork_the_chain(api: Api, org: Org, rig: Rig) -> None:
    _, segment_id = gold_rebuild_started(api, org, rig)
    first = rig.messages()[0]
    assert rig.rebuild_chunk(first) == []
    nxt = rig.messages()
    assert len(nxt) == 1
    assert rig.rebuild_chunk(first) == []  # an SQS duplicate, first delivery: dropped
    assert rig.messages() == []
    assert rig.rebuild_chunk(first, receive_count=2) == []  # redelivered: only re-sends chunk 1
    assert [m["chunk"] for m in rig.messages()] == [1]
    assert segment(api, org, segment_id)["build_progress"]["scanned"] == CHUNK


def test_a_newer_definition_supersedes_an_older_rebuild(api: Api, org: Org, rig: Rig) -> None:
    gold, segment_id = gold_rebuild_started(api, org, rig)
    v1 = rig.messages()
    assert [m["definition_version"] for m in v1] == [1]
    assert rig.rebuild_chunk(v1[0]) == []
    old_next = rig.messages()
    # the definition changes (as the SheepCRM update stores it): silver now, version 2
    redefine(org, segment_id, "tier", "silver")
    from segments.usecases import rebuild

    before = (members_of(api, org, segment_id), history_of(api, org, segment_id))
    assert rebuild.process(old_next[0]).status == "superseded"
    # dropped means dropped: the older chunk changed no membership and logged nothing
    assert (members_of(api, org, segment_id), history_of(api, org, segment_id)) == before
    assert rig.messages() == []  # nor did it continue its chain
    run_chain(rig)
    silver = sorted({f"p-r{i:04d}" for i in range(N)} - set(gold))
    assert members_of(api, org, segment_id) == silver
    view = segment(api, org, segment_id)
    assert view["build_state"] == "ready" and view["build_progress"]["definition_version"] == 2
    assert view["build_progress"]["scanned"] == N


def test_a_chunk_whose_definition_changed_while_it_worked_records_no_progress(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The definition changes between the chunk's read of the segment and its progress write: the
    write is refused (it names the version it worked for), so the older chain stops there — no
    progress of version 1 over version 2's, no next message, never "ready" for the older rules."""
    gold, segment_id = gold_rebuild_started(api, org, rig)
    first = rig.messages()[0]
    assert rig.rebuild_chunk(first) == []
    [second] = rig.messages()
    recorded = segment(api, org, segment_id)["build_progress"]
    from segments.store import rule_index
    from segments.usecases import rebuild

    real_progress = rule_index.record_progress

    def redefined_first(*args: Any, **kwargs: Any) -> bool:
        redefine(org, segment_id, "tier", "silver")  # version 2, stored while the chunk worked
        return real_progress(*args, **kwargs)

    monkeypatch.setattr(rule_index, "record_progress", redefined_first)
    outcome = rebuild.process(second)
    monkeypatch.setattr(rule_index, "record_progress", real_progress)
    assert outcome.status == "lost race" and outcome.next_message is None
    view = segment(api, org, segment_id)
    assert view["build_progress"] == recorded and view["build_state"] == "building"
    assert rig.messages() == []
    run_chain(rig)  # version 2's own chain, started from the stream
    silver = sorted({f"p-r{i:04d}" for i in range(N)} - set(gold))
    assert members_of(api, org, segment_id) == silver
    view = segment(api, org, segment_id)
    assert (view["build_state"], view["build_progress"]["definition_version"]) == ("ready", 2)


def test_a_deleted_segment_stops_its_rebuild(api: Api, org: Org, rig: Rig) -> None:
    _, segment_id = gold_rebuild_started(api, org, rig)
    body = rig.messages()[0]
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    from segments.usecases import rebuild

    assert rebuild.process(body).status == "deleted"


def test_a_static_segment_with_uris_include_gets_them(api: Api, org: Org, rig: Rig) -> None:
    segment_id = sheep_segment(api, org, "Static", segment_type="static", include=["p-s1", "p-s2"])
    rig.settle()
    assert members_of(api, org, segment_id) == ["p-s1", "p-s2"]
    assert segment(api, org, segment_id)["build_state"] == "ready"


def test_a_malformed_message_fails_alone(rig: Rig) -> None:
    assert rig.rebuild_chunk({"nonsense": True}) != []


def test_rules_changed_through_the_sheep_update_rebuild_the_segment(api: Api, org: Org, rig: Rig) -> None:
    gold = seed(org)
    rig.settle()
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    run_chain(rig)
    assert members_of(api, org, segment_id) == sorted(gold)
    uid = segment_id.replace("-", "")
    silver = [{"field": "tier", "operator": "equals", "value": "silver"}]
    resp = api.request("PUT", f"/segments/v2/{org.bucket}/segment/{uid}", bearer=org.key, body={"rules": silver})
    assert resp.status == 200, resp.text
    assert segment(api, org, segment_id)["build_state"] == "building"
    run_chain(rig)
    assert members_of(api, org, segment_id) == sorted({f"p-r{i:04d}" for i in range(N)} - set(gold))
    view = segment(api, org, segment_id)
    assert (view["definition_version"], view["build_state"]) == (2, "ready")
    assert view["current_size"] == N - len(gold)
