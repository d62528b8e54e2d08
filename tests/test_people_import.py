"""`segments-admin import-people`: a JSON-lines file through the person-events queue, the queue
consumer and the stream into the registry and a dynamic segment; a re-run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers.rules import Rig, members_of, rig_fixture, segment, sheep_segment  # noqa: F401 - `rig`
from helpers.signals import REGION, failures, run, signals_fixture, sqs_batch, sqs_record  # noqa: F401

from conftest import Api, Org
from segments.cli import admin
from segments.store import signals as signal_store

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]


def write_file(path: Path, n: int) -> list[str]:
    """n records (every fourth gold) and three bad lines; the gold PIDs."""
    lines, gold = [], []
    for i in range(n):
        tier = "gold" if i % 4 == 0 else "bronze"
        lines.append(json.dumps({"minerva_pid": f"p-imp{i:05d}", "tier": tier, "score": i}))
        if tier == "gold":
            gold.append(f"p-imp{i:05d}")
    lines[5:5] = ['{"minerva_pid": "not a pid", "tier": "gold"}', "not json", '["a list"]']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return gold


def drain(url: str) -> list[dict[str, Any]]:
    """The queue's messages as SQS records (deleted from the queue), oldest first."""
    sqs = boto3.client("sqs", region_name=REGION)
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(sqs_record(m["Body"], message_id=m["MessageId"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def consume(records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 10):
        assert failures(run("SignalsIngestFunction", sqs_batch(records[start : start + 10]))) == []


def test_import_fills_the_registry_and_a_dynamic_segment(
    api: Api, org: Org, rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 45
    gold = write_file(tmp_path / "people.jsonl", n)
    segment_id = sheep_segment(api, org, "Gold", rules=GOLD)
    rig.settle()
    url = rig.signals.bus.queues["PersonEventsQueue"]
    capsys.readouterr()
    assert (
        admin.main(["import-people", "--org", org.org_id, str(tmp_path / "people.jsonl"), "--queue", url, "--json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (report["read"], report["valid"], report["sent"], report["failed"]) == (n + 3, n, n, 0)
    assert [bad["line"] for bad in report["invalid"]] == [6, 7, 8]

    first = drain(url)
    assert len(first) == n
    consume(first)
    rig.settle()
    assert signal_store.person(org.org_id, "p-imp00007")["score"] == 7
    assert members_of(api, org, segment_id) == gold
    view = segment(api, org, segment_id)
    assert view["current_size"] == len(gold) and view["build_state"] == "ready"
    ledger = api.get(f"/v2/segments/{segment_id}/history", key=org.key).json["results"]["items"]

    # a re-run sends the same events, and applying them changes nothing
    assert (
        admin.main(["import-people", "--org", org.org_id, str(tmp_path / "people.jsonl"), "--queue", url, "--json"])
        == 0
    )
    again = drain(url)
    assert sorted(r["body"] for r in again) == sorted(r["body"] for r in first)
    consume(again)
    rig.settle()
    assert segment(api, org, segment_id)["current_size"] == len(gold)
    assert api.get(f"/v2/segments/{segment_id}/history", key=org.key).json["results"]["items"] == ledger


def test_the_queue_comes_from_the_environment(
    tmp_path: Path, rig: Rig, org: Org, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_file(tmp_path / "p.jsonl", 3)
    monkeypatch.delenv("PERSON_EVENTS_QUEUE_URL", raising=False)
    assert admin.main(["import-people", "--org", org.org_id, str(tmp_path / "p.jsonl")]) == 2
    monkeypatch.setenv("PERSON_EVENTS_QUEUE_URL", rig.signals.bus.queues["PersonEventsQueue"])
    assert admin.main(["import-people", "--org", org.org_id, str(tmp_path / "p.jsonl")]) == 0
    assert "3 sent, 3 invalid" in capsys.readouterr().out


def test_event_ids_are_deterministic_and_content_sensitive() -> None:
    from segments.cli.people_import import event_id

    assert event_id("o", "p-1", {"a": 1, "b": 2}) == event_id("o", "p-1", {"b": 2, "a": 1})
    assert event_id("o", "p-1", {"a": 1}) != event_id("o", "p-1", {"a": 2})
    assert event_id("o", "p-1", {"a": 1}) != event_id("o2", "p-1", {"a": 1})


def profile_line(n: int, pid: str, observed_at: str, **attributes: Any) -> str:
    return json.dumps(
        {
            "event_id": f"evt-prof-{n}",
            "type": "profile",
            "minerva_pid": pid,
            "observed_at": observed_at,
            "org_id": "ORG",
            "data": {"attributes": attributes},
        }
    )


def test_check_names_the_profiles_the_consumer_will_ignore_as_older(
    api: Api, org: Org, rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check reads the registry before sending; its verdict is the consumer's (applied or not)."""
    write_file(tmp_path / "people.jsonl", 4)
    url = rig.signals.bus.queues["PersonEventsQueue"]
    imported = ["import-people", "--org", org.org_id, str(tmp_path / "people.jsonl"), "--queue", url]
    assert admin.main([*imported, "--observed-at", "2025-01-01T00:00:00Z", "--json", "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["older"] == []  # nothing stored yet
    consume(drain(url))

    lines = [
        profile_line(1, "p-imp00001", "2024-06-01T00:00:00Z", tier="gold"),  # older than the import
        profile_line(2, "p-imp00002", "2025-06-01T00:00:00+02:00", tier="gold"),  # newer
        profile_line(3, "p-imp00099", "2020-01-01T00:00:00Z", tier="gold"),  # nobody stored yet
    ]
    (tmp_path / "profiles.jsonl").write_text("\n".join(lines).replace('"ORG"', json.dumps(org.org_id)) + "\n")
    assert admin.main(["publish-event", str(tmp_path / "profiles.jsonl"), "--queue", url, "--check"]) == 0
    out = capsys.readouterr().out
    assert "1 profile event(s) older than the stored profile: the consumer will ignore them" in out
    assert "line 1: p-imp00001 observed 2024-06-01T00:00:00.000000Z, stored profile of 2025-01-01T00:00:00" in out
    assert "line 2" not in out and "line 3" not in out
    consume(drain(url))
    assert signal_store.person(org.org_id, "p-imp00001")["tier"] == "bronze"  # ignored, as announced
    assert signal_store.person(org.org_id, "p-imp00002")["tier"] == "gold"
    assert signal_store.person(org.org_id, "p-imp00099")["tier"] == "gold"

    # the same file again, dated before what is stored: every record is announced as ignored
    assert admin.main([*imported, "--observed-at", "2024-12-31T23:59:59Z", "--check"]) == 0
    out = capsys.readouterr().out
    assert "4 profile event(s) older than the stored profile" in out
    assert "line 1: p-imp00000 observed 2024-12-31T23:59:59.000000Z, stored profile of 2025-01-01" in out
    assert "line 3: p-imp00002 observed 2024-12-31T23:59:59.000000Z, stored profile of 2025-05-31T22:00:00" in out
    consume(drain(url))
    assert signal_store.person(org.org_id, "p-imp00000")["profile_observed_at"] == "2025-01-01T00:00:00.000000Z"


def test_without_check_the_output_says_how_to_know(
    rig: Rig, org: Org, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_file(tmp_path / "p.jsonl", 2)
    url = rig.signals.bus.queues["PersonEventsQueue"]
    assert admin.main(["import-people", "--org", org.org_id, str(tmp_path / "p.jsonl"), "--queue", url]) == 0
    assert "older than the person's stored profile is ignored by the consumer; --check counts them" in (
        capsys.readouterr().out
    )
