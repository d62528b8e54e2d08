"""Event ids are unique per fact (docs/api.md#person-event-fields). An id reused for another
person, or for other content, is refused as an invalid event (logged), decided by a conditional
write of the id's claim, so two consumers racing with the colliding events cannot both store them."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from helpers.logs import captured_log_lines
from helpers.signals import (
    add,
    create_segment,
    detected,
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
from segments.events.person_events import InvalidEvent
from segments.usecases import ingest as ingest_usecase

A, B = "p-aaaa1111", "p-bbbb2222"


def _two_people(api: Api, org: Org, signals: Any) -> tuple[str, str]:
    sa, sb = create_segment(api, org.key, "Holds A"), create_segment(api, org.key, "Holds B")
    add(api, org.key, sa, A)
    add(api, org.key, sb, B)
    signals.publish()
    signals.bus.published()
    return sa, sb


def test_one_id_for_two_peoples_deaths_refuses_the_second_logged(api: Api, org: Org, signals: Any) -> None:
    sa, sb = _two_people(api, org, signals)
    first = person_event("death", A, event_id="evt-shared")
    second = person_event("death", B, event_id="evt-shared")  # same instant: the feed keys would collide
    assert failures(ingest(first)) == []
    with captured_log_lines() as lines:
        result = run("SignalsIngestFunction", sqs_batch([sqs_record(second, message_id="msg-second")]))
    assert failures(result) == ["msg-second"]
    [line] = [line for line in lines if line.get("message") == "invalid person event"]
    assert line["message_id"] == "msg-second" and line["event_id"] == "evt-shared"
    assert "event_id" in line["reason"] and B not in json.dumps(lines)
    assert facts(A) == ["SIG#evt-shared"] and facts(B) == []
    assert len(feed_pks(sa)) == 1 and feed_pks(sb) == []
    signals.publish()
    assert [(d["segment_id"], d["minerva_pid"]) for d in detected(signals.bus.published())] == [(sa, A)]


def test_one_id_for_other_content_of_the_same_person_is_refused(api: Api, org: Org, signals: Any) -> None:
    sa, _ = _two_people(api, org, signals)
    first = person_event("job_change", A, event_id="evt-job")
    other = {**first, "data": {**first["data"], "new_employer": "Initech"}}
    later = {**first, "observed_at": "2024-02-01T00:00:00Z"}
    assert failures(ingest(first)) == []
    assert len(failures(ingest(other))) == 1 and len(failures(ingest(later))) == 1
    resp = api.get("/v2/segments/signals/job_changes", key=org.key, query={"segment_id": sa})
    assert [(r["new_employer"], r["first_observed_at"]) for r in resp.json["results"]] == [
        ("Globex", "2024-01-15T10:30:45.123456Z")
    ]


def test_the_same_fact_again_is_a_duplicate_not_a_collision(api: Api, org: Org, signals: Any) -> None:
    _two_people(api, org, signals)
    event = person_event("death", A, event_id="evt-again")
    respelt = {**event, "observed_at": "2024-01-15T11:30:45.123456+01:00"}  # the same instant
    outcomes = [ingest_usecase.ingest_message(json.dumps(e), message_id="m") for e in (event, respelt)]
    assert [o.duplicate for o in outcomes] == [False, True]


@pytest.mark.parametrize("round_", range(3))
def test_two_consumers_with_colliding_events_at_once_store_exactly_one(
    api: Api, org: Org, signals: Any, round_: int
) -> None:
    sa, sb = _two_people(api, org, signals)
    events = [person_event("death", pid, event_id=f"evt-race-{round_}") for pid in (A, B)]
    barrier = threading.Barrier(len(events))
    outcomes: dict[str, Any] = {}

    def consume(event: dict[str, Any]) -> None:
        barrier.wait()
        try:
            outcomes[event["minerva_pid"]] = ingest_usecase.ingest_message(json.dumps(event), message_id="m")
        except InvalidEvent as exc:
            outcomes[event["minerva_pid"]] = exc

    threads = [threading.Thread(target=consume, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [pid for pid, o in outcomes.items() if isinstance(o, ingest_usecase.Ingested)]
    lost = [pid for pid, o in outcomes.items() if isinstance(o, InvalidEvent)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert facts(won[0]) == [f"SIG#evt-race-{round_}"] and facts(lost[0]) == []
    assert len(feed_pks(sa)) + len(feed_pks(sb)) == 1
