"""SignalsIngestFunction against moto: person events in, stored once, fanned out to every segment
holding the person in every org, person records kept current; per-message failures."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from helpers.logs import captured_log_lines
from helpers.signals import (
    PID,
    add,
    create_segment,
    detected,
    eventbridge,
    facts,
    failures,
    feed_pks,
    ingest,
    person_event,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
    sqs_batch,
    sqs_record,
)

from conftest import Api, Org
from segments import errors
from segments.store import people
from segments.store import signals as signal_store
from segments.usecases import ingest as ingest_usecase


def test_event_reaches_every_segment_holding_the_person_in_every_org(
    api: Api, org: Org, other_org: Org, signals: Any
) -> None:
    a1, a2 = create_segment(api, org.key, "A one"), create_segment(api, org.key, "A two")
    b1 = create_segment(api, other_org.key, "B one")
    gone = create_segment(api, org.key, "Deleted")
    elsewhere = create_segment(api, org.key, "Without the person")
    for key, sid in ((org.key, a1), (org.key, a2), (other_org.key, b1), (org.key, gone)):
        add(api, key, sid, PID, "p-other")
    add(api, org.key, elsewhere, "p-other")
    assert api.delete(f"/v2/segments/{gone}", key=org.key).status == 200

    event = person_event("death", PID, event_id="evt-death-1")
    assert failures(ingest(event)) == []

    assert facts(PID) == ["SIG#evt-death-1"]
    expected = "SIG#death#2024-01-15T10:30:45.123456Z#evt-death-1"
    for sid in (a1, a2, b1):
        assert feed_pks(sid) == [expected]
    assert feed_pks(gone) == [] and feed_pks(elsewhere) == []


def test_eventbridge_envelope_and_bare_event_are_both_accepted(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Both")
    add(api, org.key, sid, "p-one", "p-two")
    result = ingest(eventbridge(person_event("death", "p-one")), person_event("job_change", "p-two"))
    assert failures(result) == []
    assert len(feed_pks(sid)) == 2


@pytest.mark.parametrize("mode", ["sequential", "same batch", "concurrent"])
def test_duplicate_event_yields_one_signal_and_one_event_per_segment(
    api: Api, org: Org, signals: Any, mode: str
) -> None:
    s1, s2 = create_segment(api, org.key, "One"), create_segment(api, org.key, "Two")
    add(api, org.key, s1, PID)
    add(api, org.key, s2, PID)
    signals.publish()  # the membership events: not what this test counts
    signals.bus.published()
    event = person_event("death", PID, event_id="evt-dup")
    if mode != "concurrent":
        with captured_log_lines() as lines:
            if mode == "sequential":
                assert failures(ingest(event)) == [] and failures(ingest(eventbridge(event))) == []
            else:
                assert failures(ingest(event, event)) == []
        # the second delivery was told apart as a duplicate (the fact's condition), not stored again
        ingested = [line["duplicate"] for line in lines if line.get("message") == "person event ingested"]
        assert ingested == [False, True]
    else:
        barrier = threading.Barrier(4)
        outcomes: list[Any] = []

        def consume() -> None:
            barrier.wait()
            try:
                outcomes.append(ingest_usecase.ingest_message(json.dumps(event), message_id="m"))
            except errors.Retryable as exc:  # pragma: no cover - moto serialises transactions
                outcomes.append(exc)

        threads = [threading.Thread(target=consume) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(1 for o in outcomes if isinstance(o, ingest_usecase.Ingested) and not o.duplicate) == 1
    assert facts(PID) == ["SIG#evt-dup"]
    assert len(feed_pks(s1)) == 1 and len(feed_pks(s2)) == 1
    assert failures(signals.publish()) == []
    got = detected(signals.bus.published())
    assert sorted(d["segment_id"] for d in got) == sorted([s1, s2])


def test_a_redelivered_event_keeps_the_first_delivery_data(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "First wins")
    add(api, org.key, sid, PID)
    first = person_event("job_change", PID, event_id="evt-same")
    second = {**first, "data": {**first["data"], "new_employer": "Initech"}}  # other content: refused
    assert failures(ingest(first)) == [] and len(failures(ingest(second))) == 1
    resp = api.get("/v2/segments/signals/job_changes", key=org.key, query={"segment_id": sid})
    assert [r["new_employer"] for r in resp.json["results"]] == ["Globex"]


def test_crash_after_the_fact_and_before_fan_out_loses_nothing(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = create_segment(api, org.key, "Crash")
    add(api, org.key, sid, PID)
    signals.publish()
    signals.bus.published()
    real = signal_store.holders
    calls = {"n": 0}

    def crash_once(pid: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise errors.Retryable("injected: the function died here")
        return real(pid)

    monkeypatch.setattr(signal_store, "holders", crash_once)
    body = person_event("death", PID, event_id="evt-crash")
    record = sqs_record(body, message_id="msg-crash")
    assert failures(run("SignalsIngestFunction", sqs_batch([record]))) == ["msg-crash"]
    assert facts(PID) == ["SIG#evt-crash"] and feed_pks(sid) == []  # the fact is stored, the fan-out is not

    redelivered = sqs_record(body, message_id="msg-crash", receive_count=2)
    assert failures(run("SignalsIngestFunction", sqs_batch([redelivered]))) == []
    assert len(feed_pks(sid)) == 1
    signals.publish()
    assert [d["segment_id"] for d in detected(signals.bus.published())] == [sid]


def test_poison_messages_fail_alone(api: Api, org: Org, signals: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sid = create_segment(api, org.key, "Poison")
    pids = ["p-good1", "p-good2", "p-good3"]
    add(api, org.key, sid, *pids)
    secret = "p-secretvalue"
    records = [
        sqs_record(person_event("death", pids[0]), message_id="good-1"),
        sqs_record("{not json", message_id="bad-json"),
        sqs_record(person_event("job_change", pids[1]), message_id="good-2"),
        sqs_record({**person_event("death", "p-x"), "type": "wedding"}, message_id="bad-type"),
        sqs_record({**person_event("death", "p-x"), "minerva_pid": f"{secret}!"}, message_id="bad-pid"),
        sqs_record(eventbridge(person_event("death", "p-x"), detail_type="Other"), message_id="bad-envelope"),
        sqs_record(person_event("relocation", pids[2]), message_id="good-3"),
        sqs_record({**person_event("death", "p-x"), "observed_at": "yesterday"}, message_id="bad-time"),
        sqs_record(person_event("profile", "p-x"), message_id="bad-profile"),  # no org_id
    ]
    result = run("SignalsIngestFunction", sqs_batch(records))
    assert sorted(failures(result)) == sorted(
        ["bad-json", "bad-type", "bad-pid", "bad-envelope", "bad-time", "bad-profile"]
    )
    assert len(feed_pks(sid)) == 3
    # Redelivering the good ones changes nothing (one entry each).
    good = [r for r in records if r["messageId"].startswith("good")]
    assert failures(run("SignalsIngestFunction", sqs_batch(good))) == []
    assert len(feed_pks(sid)) == 3
    logged = capsys.readouterr()
    assert secret not in logged.out + logged.err


def test_a_busy_store_fails_only_its_record(api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = create_segment(api, org.key, "Busy")
    add(api, org.key, sid, "p-calm", "p-busy")
    real = signal_store.put_feed
    throttled = {"left": 1}

    def throttle(entries: Any) -> None:
        if entries and entries[0]["minerva_pid"] == "p-busy" and throttled["left"]:
            throttled["left"] -= 1
            raise errors.Retryable("injected throttling")
        real(entries)

    monkeypatch.setattr(signal_store, "put_feed", throttle)
    busy = sqs_record(person_event("death", "p-busy", event_id="evt-busy"), message_id="busy")
    calm = sqs_record(person_event("death", "p-calm", event_id="evt-calm"), message_id="calm")
    assert failures(run("SignalsIngestFunction", sqs_batch([calm, busy]))) == ["busy"]
    assert len(feed_pks(sid)) == 1
    assert failures(run("SignalsIngestFunction", sqs_batch([busy]))) == []
    assert sorted(k.rsplit("#", 1)[-1] for k in feed_pks(sid)) == ["evt-busy", "evt-calm"]


def test_out_of_order_job_changes_keep_the_newer_employer(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Careers")
    add(api, org.key, sid, PID)
    people.put(org.org_id, PID, {"name": "Ada"})
    newer = person_event(
        "job_change",
        PID,
        event_id="evt-new",
        observed_at="2024-03-01T00:00:00Z",
        data={"new_employer": "Newco", "new_title": "CEO"},
    )
    older = person_event(
        "job_change",
        PID,
        event_id="evt-old",
        observed_at="2024-01-01T00:00:00+02:00",
        data={"new_employer": "Oldco", "new_title": "Intern"},
    )
    assert failures(ingest(newer)) == [] and failures(ingest(older)) == []
    record = signal_store.person(org.org_id, PID)
    assert record is not None
    assert (record["employer"], record["title"], record["name"]) == ("Newco", "CEO", "Ada")
    assert record["job_observed_at"] == "2024-03-01T00:00:00.000000Z"
    resp = api.get("/v2/segments/signals/job_changes", key=org.key, query={"segment_id": sid})
    assert [r["signal_id"] for r in resp.json["results"]] == ["evt-new", "evt-old"]
    assert resp.json["results"][1]["first_observed_at"] == "2023-12-31T22:00:00.000000Z"


def test_lifecycle_facts_update_each_org_record_and_create_none(
    api: Api, org: Org, other_org: Org, signals: Any
) -> None:
    people.put(org.org_id, PID)
    people.put(other_org.org_id, PID)
    assert failures(ingest(person_event("death", PID))) == []
    assert failures(ingest(person_event("relocation", PID))) == []
    for org_id in (org.org_id, other_org.org_id):
        record = signal_store.person(org_id, PID)
        assert record is not None
        assert record["deceased"] is True and record["date_of_death"] == "2023-12-15"
        assert record["location"]["city"] == "York"
    assert signal_store.person("org-c", PID) is None


def test_profile_events_merge_and_older_ones_do_not(org: Org, signals: Any) -> None:
    new = person_event(
        "profile",
        PID,
        org_id=org.org_id,
        observed_at="2024-05-01T00:00:00Z",
        data={"attributes": {"name": "Ada", "tags": ["vip"], "score": 1.5}},
    )
    old = person_event(
        "profile",
        PID,
        org_id=org.org_id,
        observed_at="2024-04-01T00:00:00Z",
        data={"attributes": {"name": "Old name", "city": "Leeds"}},
    )
    assert failures(ingest(new)) == [] and failures(ingest(old)) == []
    record = signal_store.person(org.org_id, PID)
    assert record is not None
    assert (record["name"], record["tags"], record["score"]) == ("Ada", ["vip"], 1.5)
    assert "city" not in record
    assert (
        failures(
            ingest(
                {
                    **new,
                    "event_id": "evt-later",
                    "observed_at": "2024-06-01T00:00:00Z",
                    "data": {"attributes": {"city": "York"}},
                }
            )
        )
        == []
    )
    record = signal_store.person(org.org_id, PID)
    assert record is not None and (record["name"], record["city"]) == ("Ada", "York")


def test_an_ignored_older_profile_is_logged_and_counted(org: Org, signals: Any) -> None:
    stored = "2026-05-01T00:00:00.000000Z"
    newer = person_event("profile", PID, org_id=org.org_id, observed_at=stored, data={"attributes": {"tier": "gold"}})
    older = {**newer, "event_id": "evt-older", "observed_at": "2026-01-01T00:00:00Z", "data": {"attributes": {"x": 1}}}
    assert ingest_usecase.ingest_message(json.dumps(newer), message_id="m1").ignored_as_older == 0
    with captured_log_lines() as lines:
        outcome = ingest_usecase.ingest_message(json.dumps(older), message_id="m2")
    assert (outcome.records_updated, outcome.ignored_as_older) == (0, 1)
    [line] = [line for line in lines if line["message"].startswith("profile ignored")]
    assert line["level"] == "INFO"
    assert (line["event_id"], line["observed_at"], line["stored_observed_at"]) == (
        "evt-older",
        "2026-01-01T00:00:00.000000Z",
        stored,
    )
    with captured_log_lines() as lines:
        assert ingest_usecase.ingest_message(json.dumps({**newer, "event_id": "e3"}), message_id="m3").records_updated
    assert not [line for line in lines if line["message"].startswith("profile ignored")]


@pytest.mark.parametrize(
    "attributes", [{}, {"": 1}, {"x" * 101: 1}, {"pk": "X"}, {"job_observed_at": "x"}, {"big": "x" * 70_000}]
)
def test_bad_profile_attributes_are_refused(org: Org, signals: Any, attributes: dict[str, Any]) -> None:
    event = person_event("profile", PID, org_id=org.org_id, data={"attributes": attributes})
    assert len(failures(ingest(event))) == 1
    assert signal_store.person(org.org_id, PID) is None


def test_a_profile_event_registers_the_pid_for_registry_validation(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segments import aws

    monkeypatch.setenv("PID_VALIDATION", "registry")
    aws.reset()
    sid = create_segment(api, org.key, "Registry")
    profile = person_event("profile", "p-known", org_id=org.org_id, data={"attributes": {"name": "Ada"}})
    assert failures(ingest(eventbridge(profile))) == []
    resp = api.post(
        "/v2/segments/members/add", key=org.key, body={"segment_id": sid, "minerva_pids": ["p-known", "p-unknown"]}
    )
    assert resp.status == 200, resp.text
    assert resp.json["results"]["n_added"] == 1
    assert resp.json["results"]["invalid_minerva_pids"] == ["p-unknown"]
