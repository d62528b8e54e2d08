"""Real-time membership of rule segments: person-record writes from the table's stream, through
RuleMembershipFunction, re-evaluate only the segments whose rules read a changed field and write
only memberships that change; the rule index follows segment definitions."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from helpers.rules import (
    Rig,
    members_of,
    profile,
    redefine,
    rig_fixture,  # noqa: F401 - the `rig` fixture
    segment,
    sheep_segment,
)
from helpers.signals import REGION, ingest, signals_fixture  # noqa: F401 - the `signals` fixture

from conftest import Api, Org
from segments.store import keys

PID = "p-a1b2c3d4e5f6"
GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]


def times(n: int) -> str:
    return f"2024-01-15T10:30:{n:02d}.000000Z"


def history(api: Api, org: Org, segment_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v2/segments/{segment_id}/history", key=org.key)
    assert resp.status == 200, resp.text
    return list(resp.json["results"]["items"])


def membership_events(events: list[dict[str, Any]], segment_id: str) -> list[dict[str, Any]]:
    return [
        e["detail"]
        for e in events
        if e["detail-type"] == "Segment Membership Changed" and e["detail"]["segment_id"] == segment_id
    ]


def index_item(org_id: str, field: str) -> dict[str, Any]:
    client = boto3.client("dynamodb", region_name=REGION)
    return client.get_item(TableName="SegmentsTable", Key=keys.rule_field_key(org_id, field)).get("Item") or {}


def test_a_profile_moves_a_person_into_and_out_of_a_dynamic_segment(api: Api, org: Org, rig: Rig) -> None:
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.settle()  # the segment is indexed and its (empty) rebuild completes
    rig.publish()
    assert segment(api, org, segment_id)["build_state"] == "ready"

    ingest(profile(PID, org, {"tier": "Gold", "city": "York"}, observed_at=times(1)))
    rig.settle()
    assert members_of(api, org, segment_id) == [PID]
    assert segment(api, org, segment_id)["current_size"] == 1
    joined = membership_events(rig.publish(), segment_id)
    assert [(e["added"], e["removed"]) for e in joined] == [([PID], [])]

    ingest(profile(PID, org, {"tier": "silver"}, observed_at=times(2)))
    rig.settle()
    assert members_of(api, org, segment_id) == []
    assert segment(api, org, segment_id)["current_size"] == 0
    left = membership_events(rig.publish(), segment_id)
    assert [(e["added"], e["removed"]) for e in left] == [([], [PID])]
    entries = history(api, org, segment_id)
    assert [(e["minerva_pid"], e["change"], e["reason"]) for e in entries] == [
        (PID, "added", "rule"),
        (PID, "removed", "rule"),
    ]


def test_a_redelivered_stream_batch_changes_and_publishes_nothing_twice(api: Api, org: Org, rig: Rig) -> None:
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.settle()
    rig.publish()
    ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    batch = rig.stream()
    assert rig.rule_function(batch)["batchItemFailures"] == []
    assert rig.rule_function(batch)["batchItemFailures"] == []  # Lambda retried the batch
    rig.settle()
    assert segment(api, org, segment_id)["current_size"] == 1
    assert len(membership_events(rig.publish(), segment_id)) == 1
    assert [e["change"] for e in history(api, org, segment_id)] == ["added"]


def test_only_segments_reading_a_changed_field_are_evaluated_with_two_reads(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = [
        sheep_segment(api, org, f"Tier {i}", rules=[{"field": "tier", "operator": "equals", "value": f"t{i}"}])
        for i in range(3)
    ]
    others = [
        sheep_segment(api, org, f"City {i}", rules=[{"field": "city", "operator": "equals", "value": f"c{i}"}])
        for i in range(5)
    ]
    ingest(profile(PID, org, {"tier": "none", "city": "nowhere"}, observed_at=times(1)))
    rig.settle()
    assert all(members_of(api, org, s) == [] for s in readers + others)

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    from segments import store
    from segments.store import dynamo

    store.reset()
    dynamo.client().meta.events.register("before-call.dynamodb", record)
    ingest(profile(PID, org, {"tier": "still none"}, observed_at=times(2)))
    records = rig.stream()
    person_records = [
        r
        for r in records
        if r["dynamodb"]["Keys"]["sk"]["S"].startswith("PID#") and r["dynamodb"]["Keys"]["pk"]["S"].endswith("#PERSON")
    ]
    assert len(person_records) == 1
    calls.clear()
    rig.evaluations.count = 0
    assert rig.rule_function(person_records)["batchItemFailures"] == []
    assert rig.evaluations.count == len(readers)  # the city segments were not evaluated
    assert calls == ["BatchGetItem", "BatchGetItem"]  # the index, then the memberships; no write

    # a change that moves the person writes only that membership
    ingest(profile(PID, org, {"tier": "t1"}, observed_at=times(3)))
    records = [r for r in rig.stream() if r["dynamodb"]["Keys"]["pk"]["S"].endswith("#PERSON")]
    calls.clear()
    rig.evaluations.count = 0
    assert rig.rule_function(records)["batchItemFailures"] == []
    assert rig.evaluations.count == len(readers)
    assert calls[:2] == ["BatchGetItem", "BatchGetItem"]
    assert calls.count("UpdateItem") == 2  # one member write: lease and commit
    rig.settle()
    assert [members_of(api, org, s) for s in readers] == [[], [PID], []]


def test_a_change_of_a_field_no_rule_reads_reads_the_index_only(api: Api, org: Org, rig: Rig) -> None:
    sheep_segment(api, org, "Gold", rules=GOLD)
    ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    rig.settle()
    from segments.usecases import rule_membership

    new = {"pk": f"ORG#{org.org_id}#PERSON", "sk": f"PID#{PID}", "tier": "gold", "shoe_size": 9}
    old = {**new, "shoe_size": 8}
    rig.evaluations.count = 0
    result = rule_membership.reevaluate(org.org_id, PID, old, new, change_id="c1")
    assert (result.changed_fields, result.segments_evaluated, rig.evaluations.count) == (1, 0, 0)


def test_hybrid_includes_and_excludes(api: Api, org: Org, rig: Rig) -> None:
    included, excluded, matching = "p-inc1", "p-exc1", "p-match1"
    for n, pid in enumerate((excluded, matching, included)):
        ingest(profile(pid, org, {"tier": "gold"}, observed_at=times(n)))
    ingest(profile("p-other1", org, {"tier": "bronze"}, observed_at=times(5)))
    segment_id = sheep_segment(
        api, org, "Hybrid", segment_type="hybrid", rules=GOLD, include=[included, "p-norecord"], exclude=[excluded]
    )
    rig.settle()
    assert members_of(api, org, segment_id) == sorted([included, matching, "p-norecord"])

    # the included person stops matching: still a member; the excluded one stays out
    ingest(profile(included, org, {"tier": "bronze"}, observed_at=times(10)))
    ingest(profile(excluded, org, {"tier": "gold", "city": "York"}, observed_at=times(11)))
    ingest(profile("p-other1", org, {"tier": "gold"}, observed_at=times(12)))
    rig.settle()
    assert members_of(api, org, segment_id) == sorted([included, matching, "p-norecord", "p-other1"])
    assert segment(api, org, segment_id)["current_size"] == 4


def test_the_index_follows_segment_definitions(api: Api, org: Org, rig: Rig) -> None:
    segment_id = sheep_segment(
        api, org, "Gold", rules=[*GOLD, {"field": "location.country", "operator": "equals", "value": "GB"}]
    )
    rig.settle()
    name = f"s_{segment_id}"
    assert name in index_item(org.org_id, "tier") and name in index_item(org.org_id, "location")
    entry = index_item(org.org_id, "tier")[name]["M"]
    assert entry["segment_type"]["S"] == "dynamic" and entry["definition_version"]["N"] == "1"

    # a new definition (as the SheepCRM update will store it): filed under its new field only
    redefine(org, segment_id, "employer", "Acme")
    rig.settle()
    assert name not in index_item(org.org_id, "tier") and name not in index_item(org.org_id, "location")
    assert index_item(org.org_id, "employer")[name]["M"]["definition_version"]["N"] == "2"
    view = segment(api, org, segment_id)
    assert view["build_state"] == "ready" and view["build_progress"]["definition_version"] == 2

    # deleted: it leaves the index
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    rig.settle()
    assert name not in index_item(org.org_id, "employer")


def test_a_replayed_older_definition_does_not_overwrite_a_newer_one(org: Org, rig: Rig) -> None:
    from segments.store import rule_index

    sid = "00000000-0000-4000-8000-000000000001"
    newer = {"segment_type": "dynamic", "rules": GOLD, "definition_version": 3}
    assert rule_index.put_entry(org.org_id, "tier", sid, newer)
    assert not rule_index.put_entry(org.org_id, "tier", sid, {**newer, "definition_version": 2})
    assert not rule_index.remove_entry(org.org_id, "tier", sid, definition_version=2)
    assert rule_index.entries(org.org_id, ["tier"])[sid]["definition_version"] == 3


def test_static_and_renamed_segments_are_not_indexed(api: Api, org: Org, rig: Rig) -> None:
    static = sheep_segment(api, org, "Static", segment_type="static")
    dynamic = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.settle()
    assert set(index_item(org.org_id, "tier")) == {"pk", "sk", f"s_{dynamic}"}
    assert f"s_{static}" not in index_item(org.org_id, keys.ANY_FIELD)
    before = rig.messages()
    assert api.patch(f"/v2/segments/{dynamic}", key=org.key, body={"name": "Golden"}).status == 200
    records = rig.stream()
    assert rig.rule_function(records)["batchItemFailures"] == []
    assert rig.messages() == before == []  # a rename starts no rebuild


def test_a_new_record_is_evaluated_against_segments_without_rules(api: Api, org: Org, rig: Rig) -> None:
    everyone = sheep_segment(api, org, "Everyone", rules=[])
    rig.settle()
    ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    rig.settle()
    assert members_of(api, org, everyone) == [PID]


def test_a_failing_record_is_reported_and_nothing_after_it_is_applied(
    api: Api, org: Org, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.settle()
    ingest(profile(PID, org, {"tier": "gold"}, observed_at=times(1)))
    ingest(profile("p-second", org, {"tier": "gold"}, observed_at=times(2)))
    # (moto writes a created item's keys first, then the item: two INSERTs; the later ones count here)
    records = [r for r in rig.stream() if "tier" in r["dynamodb"].get("NewImage", {})]
    assert len(records) == 2
    from segments.store import rule_index

    real = rule_index.memberships
    calls = {"n": 0}

    def flaky(pid: str, segment_ids: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("store down")
        return real(pid, segment_ids)

    monkeypatch.setattr(rule_index, "memberships", flaky)
    result = rig.rule_function(records)
    assert result["batchItemFailures"] == [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    assert members_of(api, org, segment_id) == []
    assert rig.rule_function(records)["batchItemFailures"] == []
    assert members_of(api, org, segment_id) == sorted([PID, "p-second"])
    assert json.dumps(segment(api, org, segment_id)["current_size"]) == "2"


YORK = {"field": "location.city", "operator": "equals", "value": "York"}
NEGATIVE = {
    "not deceased": [{"field": "deceased", "operator": "not_equal_to", "value": True}],
    "no lapsed tag": [{"field": "tags", "operator": "none_of", "value": ["lapsed", "banned"]}],
    "not in York": [{"field": "*", "operator": "raw", "value": {"not": YORK}}],
    "gold, not deceased": [*GOLD, {"field": "deceased", "operator": "not_equal_to", "value": True}],
}


def test_new_records_join_segments_whose_rules_a_missing_field_satisfies(api: Api, org: Org, rig: Rig) -> None:
    segments = {name: sheep_segment(api, org, name, rules=rules) for name, rules in NEGATIVE.items()}
    rig.settle()
    # filed where a record's first write finds them: all but the one that needs tier = gold
    anywhere = index_item(org.org_id, keys.ANY_FIELD)
    assert {name for name, sid in segments.items() if f"s_{sid}" in anywhere} == set(NEGATIVE) - {"gold, not deceased"}
    people = {
        "p-plain1": {"tier": "gold"},  # none of the fields those rules read: a member of all four
        "p-dead1": {"tier": "gold", "deceased": True},
        "p-lapsed1": {"tier": "silver", "tags": ["lapsed"]},
        "p-york1": {"tier": "bronze", "location": {"city": "york"}},
    }
    for n, (pid, attributes) in enumerate(people.items()):
        ingest(profile(pid, org, attributes, observed_at=times(n)))
    rig.settle()
    assert {name: members_of(api, org, sid) for name, sid in segments.items()} == {
        "not deceased": ["p-lapsed1", "p-plain1", "p-york1"],
        "no lapsed tag": ["p-dead1", "p-plain1", "p-york1"],
        "not in York": ["p-dead1", "p-lapsed1", "p-plain1"],
        "gold, not deceased": ["p-plain1"],
    }
    # a later change of a field those rules read moves the person out, and back in
    ingest(profile("p-plain1", org, {"deceased": True}, observed_at=times(10)))
    rig.settle()
    assert "p-plain1" not in members_of(api, org, segments["not deceased"])
    ingest(profile("p-plain1", org, {"deceased": False}, observed_at=times(11)))
    rig.settle()
    assert "p-plain1" in members_of(api, org, segments["not deceased"])
    assert segment(api, org, segments["not deceased"])["current_size"] == 3


def test_a_new_record_costs_one_index_read_for_its_fields_and_the_any_field_item(api: Api, org: Org, rig: Rig) -> None:
    sheep_segment(api, org, "Not deceased", rules=NEGATIVE["not deceased"])
    sheep_segment(api, org, "Gold", rules=GOLD)
    sheep_segment(api, org, "City", rules=[{"field": "city", "operator": "equals", "value": "York"}])
    rig.settle()
    from segments.usecases import rule_membership

    new = {"pk": f"ORG#{org.org_id}#PERSON", "sk": f"PID#{PID}", "tier": "gold"}
    rig.evaluations.count = 0
    result = rule_membership.reevaluate(org.org_id, PID, {}, new, change_id="c1", created=True)
    # Gold (reads tier) and Not deceased (matches a record without `deceased`); never City
    assert (result.segments_evaluated, rig.evaluations.count, len(result.added)) == (2, 2, 2)


def test_one_change_of_two_indexed_fields_reads_both_fields_segments(api: Api, org: Org, rig: Rig) -> None:
    gold = sheep_segment(api, org, "Gold", rules=GOLD)
    york = sheep_segment(api, org, "York", rules=[YORK])
    zeta = sheep_segment(api, org, "Zeta", rules=[{"field": "zeta", "operator": "equals", "value": 1}])
    ingest(profile(PID, org, {"tier": "silver", "location": {"city": "Leeds"}, "zeta": 0}, observed_at=times(1)))
    rig.settle()
    # one profile changes three indexed fields at once: each field's segments are judged
    ingest(profile(PID, org, {"tier": "gold", "location": {"city": "York"}, "zeta": 1}, observed_at=times(2)))
    rig.settle()
    assert [members_of(api, org, s) for s in (gold, york, zeta)] == [[PID], [PID], [PID]]
