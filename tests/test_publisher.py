"""PublisherFunction over moto's DynamoDB stream: events out (docs/api.md#segment-events), each once, in batches of at
most 10, throttled entries retried, and the stream resumed from the first record not published."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers.signals import (
    PID,
    add,
    create_segment,
    failures,
    ingest,
    of_type,
    person_event,
    remove,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
)

from conftest import Api, Org, template
from segments.adapters.dynamodb_stream import StreamChange
from segments.events import bus, outbox
from tools.local_stack import filters


def test_membership_changes_and_signals_are_published_once(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Out")
    add(api, org.key, sid, PID, "p-two")
    add(api, org.key, sid, PID)  # redundant: no change, no event
    remove(api, org.key, sid, "p-two")
    assert failures(ingest(person_event("job_change", PID, event_id="evt-job"))) == []
    assert failures(ingest(person_event("job_change", PID, event_id="evt-job"))) == []  # redelivered

    records = signals.stream_batch()
    assert failures(run("PublisherFunction", {"Records": records})) == []
    events = signals.bus.published()
    assert all(e["source"] == "segments" for e in events)
    changed = of_type(events, "Segment Membership Changed")
    assert [(sorted(c["added"]), c["removed"]) for c in changed] == [([PID, "p-two"], []), ([], ["p-two"])]
    assert all(c["segment_id"] == sid and c["org_id"] == org.org_id and c["reason"] == "api" for c in changed)
    assert all(c["api_request_id"].startswith("req_") for c in changed)
    [signal] = of_type(events, "Segment Signal Detected")
    assert {k: signal[k] for k in ("segment_id", "org_id", "minerva_pid", "signal_type")} == {
        "segment_id": sid,
        "org_id": org.org_id,
        "minerva_pid": PID,
        "signal_type": "job_change",
    }
    assert signal["signal"]["signal_id"] == "evt-job" and signal["signal"]["new_employer"] == "Globex"
    assert len({e["detail"]["event_id"] for e in events}) == len(events) == 3

    # The same records again (a stream retry): the same event ids, which consumers de-duplicate on.
    assert failures(run("PublisherFunction", {"Records": records})) == []
    assert sorted(e["detail"]["event_id"] for e in signals.bus.published()) == sorted(
        e["detail"]["event_id"] for e in events
    )


class FlakyBus:
    """put_events that fails some entries (FailedEntryCount) or whole calls, then lets them through."""

    def __init__(self, real: Any, plan: list[str]) -> None:
        self.real, self.plan, self.calls = real, list(plan), []  # plan: ok | half | fail | throttle, per call

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "throttle":
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents")
        if step == "fail":
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"} for _ in Entries],
            }
        if step == "half":
            sent = self.real.put_events(Entries=Entries[::2])["Entries"]
            out, it = [], iter(sent)
            for i in range(len(Entries)):
                out.append(next(it) if i % 2 == 0 else {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"})
            return {"FailedEntryCount": len(Entries) // 2, "Entries": out}
        return dict(self.real.put_events(Entries=Entries))


def _many_changes(api: Api, org: Org, n: int) -> str:
    sid = create_segment(api, org.key, "Many")
    for i in range(n):
        add(api, org.key, sid, f"p-many{i}")
    return sid


def test_throttled_entries_are_retried_nothing_lost_nothing_doubled(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_changes(api, org, 23)
    flaky = FlakyBus(bus.client(), ["half", "throttle", "ok", "half", "ok", "ok"])
    monkeypatch.setattr(bus, "client", lambda: flaky)
    monkeypatch.setattr(bus, "backoff", lambda attempt: None)
    assert failures(signals.publish()) == []
    assert max(flaky.calls) <= 10
    changed = of_type(signals.bus.published(), "Segment Membership Changed")
    assert sorted(p for c in changed for p in c["added"]) == sorted(f"p-many{i}" for i in range(23))


def test_entries_that_keep_failing_report_the_first_record_and_resume_there(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_changes(api, org, 15)
    records = [r for r in signals.stream_batch() if outbox.is_ledger_insert(StreamChange(r))]
    assert len(records) == 15
    # The first batch of 10 goes out; the second keeps failing.
    flaky = FlakyBus(bus.client(), ["ok"] + ["fail"] * bus.MAX_ATTEMPTS)
    monkeypatch.setattr(bus, "client", lambda: flaky)
    monkeypatch.setattr(bus, "backoff", lambda attempt: None)
    result = run("PublisherFunction", {"Records": records})
    assert failures(result) == [records[10]["dynamodb"]["SequenceNumber"]]
    first = of_type(signals.bus.published(), "Segment Membership Changed")
    assert sorted(p for c in first for p in c["added"]) == sorted(f"p-many{i}" for i in range(10))
    # Lambda resumes from the reported record.
    assert failures(run("PublisherFunction", {"Records": records[10:]})) == []
    rest = of_type(signals.bus.published(), "Segment Membership Changed")
    assert sorted(p for c in rest for p in c["added"]) == sorted(f"p-many{i}" for i in range(10, 15))


def test_a_record_whose_image_cannot_be_read_is_reported_after_the_ones_before_it_are_published(
    api: Api, org: Org, signals: Any
) -> None:
    """A poison record (an image that is not DynamoDB JSON) ends the batch there: the records before
    it are published, it is the one reported, and nothing after it goes out before it does."""
    _many_changes(api, org, 3)
    records = [r for r in signals.stream_batch() if outbox.is_ledger_insert(StreamChange(r))]
    assert len(records) == 3
    poison = {**records[1], "dynamodb": {**records[1]["dynamodb"], "NewImage": {"pids": {"Q": "?"}}}}
    result = run("PublisherFunction", {"Records": [records[0], poison, records[2]]})
    assert failures(result) == [records[1]["dynamodb"]["SequenceNumber"]]
    [published] = of_type(signals.bus.published(), "Segment Membership Changed")
    assert published["added"] == ["p-many0"]


def _ledger_record(pids: list[str]) -> dict[str, Any]:
    image = {
        "pk": {"S": "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab"},
        "sk": {"S": "LOG#2024-01-01T00:00:00.000000Z#req_0#0000"},
        "segment_id": {"S": "3f1e2d4c-5b6a-4789-8abc-0123456789ab"},
        "org_id": {"S": "org#with#hashes"},
        "change": {"S": "added"},
        "pids": {"L": [{"S": p} for p in pids]},
        "at": {"S": "2024-01-01T00:00:00Z"},
        "api_request_id": {"S": "req_0"},
        "reason": {"S": "api"},
    }
    return {
        "eventID": "1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/SegmentsTable/stream/2024-01-01T00:00:00.000",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": "100",
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "ApproximateCreationDateTime": 1704067200,
        },
    }


def test_membership_events_are_chunked_well_under_256_kb() -> None:
    pids = [f"p-{'x' * 60}{i:04d}" for i in range(2500)]
    entries = outbox.entries_of(StreamChange(_ledger_record(pids)))
    assert len(entries) == 3
    assert sorted(p for e in entries for p in e.detail["added"]) == sorted(pids)
    assert len({e.detail["event_id"] for e in entries}) == 3
    for entry in entries:
        assert len(json.dumps(entry.request("bus")).encode()) < 128 * 1024
        assert entry.detail["org_id"] == "org#with#hashes"


@pytest.mark.parametrize("kind", ["MODIFY", "REMOVE"])
def test_a_ledger_or_feed_record_that_is_not_an_insert_publishes_nothing(
    api: Api, org: Org, signals: Any, kind: str
) -> None:
    """Only an INSERT is news: a rewrite (MODIFY) of a ledger entry or feed entry, as a retried
    write or a redelivered event makes, or a delete, is never published (the stream's filter
    already drops them; the outbox must not rely on it)."""
    sid = create_segment(api, org.key, "Rewrites")
    add(api, org.key, sid, PID)
    assert failures(ingest(person_event("death", PID))) == []
    inserts = [
        r
        for r in signals.stream_batch()
        if outbox.is_ledger_insert(StreamChange(r)) or outbox.is_feed_insert(StreamChange(r))
    ]
    assert len(inserts) == 2  # one ledger entry, one feed entry
    rewritten = [
        {**r, "eventName": kind, "dynamodb": {**r["dynamodb"], "OldImage": r["dynamodb"]["NewImage"]}} for r in inserts
    ]
    assert [outbox.entries_of(StreamChange(r)) for r in rewritten] == [[], []]
    assert failures(run("PublisherFunction", {"Records": rewritten})) == []
    assert signals.bus.published() == []
    assert failures(run("PublisherFunction", {"Records": inserts})) == []  # the inserts themselves do publish
    assert len(signals.bus.published()) == 2


def _matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style matching for the pattern features the template uses (exact values, prefix)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(p, value.get(k)) for k, p in pattern.items())
    return any(
        (isinstance(p, dict) and isinstance(value, str) and value.startswith(p["prefix"])) or p == value
        for p in pattern
    )


@pytest.mark.parametrize(
    ("function", "wanted"),
    [("PublisherFunction", {"feed", "ledger"}), ("SignalFeedFunction", {"ledger", "segment restored"})],
)
def test_stream_filters_select_feed_and_ledger_inserts(function: str, wanted: set[str]) -> None:
    event = template()["Resources"][function]["Properties"]["Events"]
    [source] = [e["Properties"] for e in event.values() if e["Type"] == "DynamoDB"]
    patterns = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    seg = "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab"
    samples = {
        "feed": ("INSERT", seg, "SIG#death#2024-01-01T00:00:00.000000Z#evt-1"),
        "ledger": ("INSERT", seg, "LOG#2024-01-01T00:00:00.000000Z#req_0#0000"),
        "feed rewrite": ("MODIFY", seg, "SIG#death#2024-01-01T00:00:00.000000Z#evt-1"),
        "feed delete": ("REMOVE", seg, "SIG#death#2024-01-01T00:00:00.000000Z#evt-1"),
        "fact": ("INSERT", "PID#p-1", "SIG#evt-1"),
        "member": ("INSERT", seg, "PID#p-1"),
        "segment": ("INSERT", "ORG#org-a", "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab"),
        "segment restored": ("MODIFY", "ORG#org-a", "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab", "deleted", "active"),
        "segment deleted": ("MODIFY", "ORG#org-a", "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab", "active", "deleted"),
        "segment renamed": ("MODIFY", "ORG#org-a", "SEG#3f1e2d4c-5b6a-4789-8abc-0123456789ab", "active", "active"),
        "held entry": ("INSERT", seg, "HELD#SIG#death#2024-01-01T00:00:00.000000Z#evt-1"),
    }

    def record(kind: str, pk: str, sk: str, old: str | None = None, new: str | None = None) -> dict[str, Any]:
        images = {}
        if old is not None:
            images = {"OldImage": {"record_state": {"S": old}}, "NewImage": {"record_state": {"S": new}}}
        return {"eventName": kind, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, **images}}

    selected = {name for name, sample in samples.items() if any(_matches(p, record(*sample)) for p in patterns)}
    # the local stack's filter (what `make local` delivers) selects the same records
    assert {name for name, sample in samples.items() if filters.matches_any(patterns, record(*sample))} == selected
    assert selected == wanted
    assert source["StartingPosition"] == "TRIM_HORIZON"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
