"""GET /v2/segments/signals/* through the gateway and authorizer, against moto: shapes, current
members only (late joiners, removals, re-adds), tenancy, paging, and what a page costs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from helpers.signals import (
    PID,
    add,
    create_segment,
    failures,
    feed,
    feed_pks,
    ingest,
    person_event,
    remove,
    signals_fixture,  # noqa: F401 - the `signals` fixture
)

from conftest import Api, Org
from segments.events.person_events import parse
from segments.store import dynamo
from segments.usecases import ingest as ingest_usecase

DEATHS = "/v2/segments/signals/deaths"
JOBS = "/v2/segments/signals/job_changes"
MOVES = "/v2/segments/signals/relocations"


def pids_of(resp: Any) -> list[str]:
    assert resp.status == 200, resp.text
    return [r["minerva_pid"] for r in resp.json["results"]]


def test_shapes_of_the_three_types(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Shapes")
    add(api, org.key, sid, PID)
    for kind in ("death", "job_change", "relocation"):
        assert failures(ingest(person_event(kind, PID, event_id=f"evt-{kind}"))) == []
    deaths = api.get(DEATHS, key=org.key, query={"segment_id": sid})
    assert deaths.status == 200, deaths.text
    assert deaths.json["api_request_id"].startswith("req_") and "next_cursor" not in deaths.json
    assert deaths.json["results"] == [
        {
            "minerva_pid": PID,
            "obituary_id": "obit-xyz789",
            "date_of_death": "2023-12-15",
            "publication_last_update_date": "2023-12-18",
            "first_observed_at": "2024-01-15T10:30:45.123456Z",
            "signal_metadata": {
                "source": "obituary_database",
                "obituary_url": "https://news.example/obit-xyz789",
                "publication_name": "Local News",
                "confidence_score": 0.95,
            },
        }
    ]
    jobs = api.get(JOBS, key=org.key, query={"segment_id": sid}).json["results"]
    assert jobs == [
        {
            "minerva_pid": PID,
            "signal_id": "evt-job_change",
            "previous_employer": "Acme",
            "previous_title": "Engineer",
            "new_employer": "Globex",
            "new_title": "CTO",
            "effective_date": "2024-01-02",
            "first_observed_at": "2024-01-15T10:30:45.123456Z",
            "signal_metadata": {"source": "linkedin", "confidence_score": 0.8},
        }
    ]
    moves = api.get(MOVES, key=org.key, query={"segment_id": sid}).json["results"]
    assert moves == [
        {
            "minerva_pid": PID,
            "signal_id": "evt-relocation",
            "previous_location": {"city": "Leeds", "region": "West Yorkshire", "country": "GB"},
            "new_location": {"city": "York", "region": "North Yorkshire", "country": "GB"},
            "effective_date": "2024-02-01",
            "first_observed_at": "2024-01-15T10:30:45.123456Z",
            "signal_metadata": {"source": "postal", "confidence_score": 0.7},
        }
    ]


def test_a_late_joiner_is_served_once_the_feed_function_ran(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Late")
    assert failures(ingest(person_event("death", PID))) == []
    signals.stream_batch()  # what came before the add
    add(api, org.key, sid, PID, "p-nosignal")
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid})) == []
    feed(signals)
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid})) == [PID]


def test_a_removed_member_is_not_served_at_once_and_a_re_added_one_is_again(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Leavers")
    add(api, org.key, sid, PID, "p-stays")
    assert failures(ingest(person_event("death", PID), person_event("death", "p-stays"))) == []
    assert sorted(pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid}))) == sorted([PID, "p-stays"])
    signals.stream_batch()

    remove(api, org.key, sid, PID)
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid})) == ["p-stays"]  # before the feed runs
    feed(signals)
    assert len(feed_pks(sid)) == 1  # the removed member's entry is gone
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid})) == ["p-stays"]

    add(api, org.key, sid, PID)
    feed(signals)
    assert sorted(pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid}))) == sorted([PID, "p-stays"])


def test_remove_then_re_add_in_one_stream_batch_ends_served(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Flap")
    add(api, org.key, sid, PID)
    assert failures(ingest(person_event("death", PID))) == []
    signals.stream_batch()
    remove(api, org.key, sid, PID)
    add(api, org.key, sid, PID)
    feed(signals)  # removal and re-add in order
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid})) == [PID]


def test_a_pid_in_two_orgs_and_tenant_isolation(api: Api, org: Org, other_org: Org, signals: Any) -> None:
    mine, theirs = create_segment(api, org.key, "Mine"), create_segment(api, other_org.key, "Theirs")
    add(api, org.key, mine, PID)
    add(api, other_org.key, theirs, PID)
    assert failures(ingest(person_event("death", PID))) == []
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": mine})) == [PID]
    assert pids_of(api.get(DEATHS, key=other_org.key, query={"segment_id": theirs})) == [PID]
    for key, foreign in ((org.key, theirs), (other_org.key, mine)):
        resp = api.get(DEATHS, key=key, query={"segment_id": foreign})
        assert resp.status == 404 and resp.json["error"] == "Segment not found"
    unknown = api.get(DEATHS, key=org.key, query={"segment_id": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status == 404 and unknown.json["error"] == "Segment not found"
    assert api.delete(f"/v2/segments/{mine}", key=org.key).status == 200
    assert api.get(DEATHS, key=org.key, query={"segment_id": mine}).status == 404
    assert api.get(DEATHS, query={"segment_id": theirs}).status == 401


def _five_deaths(api: Api, org: Org) -> str:
    sid = create_segment(api, org.key, "Paging")
    pids = [f"p-page{i}" for i in range(5)]
    add(api, org.key, sid, *pids)
    events = [
        person_event("death", pid, event_id=f"evt-{i}", observed_at=f"2024-01-0{i + 1}T12:00:00Z")
        for i, pid in enumerate(pids)
    ]
    assert failures(ingest(*events)) == []
    return sid


def test_paging_newest_first_with_since_until_limit_and_cursor(api: Api, org: Org, signals: Any) -> None:
    sid = _five_deaths(api, org)
    everything = pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid}))
    assert everything == ["p-page4", "p-page3", "p-page2", "p-page1", "p-page0"]

    seen: list[str] = []
    query: dict[str, Any] = {"segment_id": sid, "limit": 2}
    pages = 0
    while True:
        resp = api.get(DEATHS, key=org.key, query=query)
        seen += pids_of(resp)
        pages += 1
        if "next_cursor" not in resp.json:
            break
        query["cursor"] = resp.json["next_cursor"]
    assert seen == everything and pages == 3

    window = {"segment_id": sid, "since": "2024-01-02T12:00:00Z", "until": "2024-01-04T12:00:00+00:00"}
    assert pids_of(api.get(DEATHS, key=org.key, query=window)) == ["p-page3", "p-page2", "p-page1"]
    first = api.get(DEATHS, key=org.key, query={**window, "limit": 2})
    assert pids_of(first) == ["p-page3", "p-page2"]
    rest = api.get(DEATHS, key=org.key, query={**window, "limit": 2, "cursor": first.json["next_cursor"]})
    assert pids_of(rest) == ["p-page1"] and "next_cursor" not in rest.json
    assert pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid, "since": "2024-01-05"})) == ["p-page4"]
    # Another type has its own feed.
    assert pids_of(api.get(JOBS, key=org.key, query={"segment_id": sid})) == []

    # A cursor belongs to its window, type and segment.
    other_window = api.get(DEATHS, key=org.key, query={"segment_id": sid, "cursor": first.json["next_cursor"]})
    assert other_window.status == 422 and other_window.json["error"] == "Invalid cursor"
    other_type = api.get(JOBS, key=org.key, query={**window, "cursor": first.json["next_cursor"]})
    assert other_type.status == 422


def _forged(position: Any, scope: str, kind: str = "signals:death") -> str:
    raw = json.dumps({"k": kind, "s": scope, "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "x"},
        {"since": "yesterday"},
        {"until": "2024-01-01T00:00:00"},
        {"since": "9999-12-31T23:59:59-05:00"},  # past year 9999 in UTC: the conversion would overflow
        {"until": "9999-12-31T23:59:59-05:00"},
        {"since": "1900-01-01T00:30:00+01:00"},  # 1899 in UTC
        {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
        {"cursor": "%%%"},
        {"cursor": "e30"},
        {"segment_id": "not-a-uuid"},
        {"segment_id": None},
    ],
)
def test_bad_parameters_are_422(api: Api, org: Org, signals: Any, params: dict[str, Any]) -> None:
    sid = create_segment(api, org.key, "Bad params")
    query = {k: v for k, v in {"segment_id": sid, **params}.items() if v is not None}
    resp = api.get(DEATHS, key=org.key, query=query)
    assert resp.status == 422, resp.text
    assert resp.json["status_code"] == 422 and resp.json["api_request_id"].startswith("req_")
    assert isinstance(resp.json["error"], str) and resp.json["error"]


@pytest.mark.parametrize(
    "position",
    [
        "SIG#death#2024",
        "PID#p-1",
        7,
        None,
        "SIG#job_change#2024-01-01T00:00:00.000000Z#e",
        "SIG#death#2024-01-01T00:00:00.000000Z#e\u0000",
    ],
)
def test_tampered_cursors_are_422(api: Api, org: Org, signals: Any, position: Any) -> None:
    sid = create_segment(api, org.key, "Tampered")
    cursor = _forged(position, f"{org.org_id}:{sid}::")
    resp = api.get(DEATHS, key=org.key, query={"segment_id": sid, "cursor": cursor})
    assert resp.status == 422 and resp.json["error"] == "Invalid cursor"
    stolen = _forged("SIG#death#2024-01-01T00:00:00.000000Z#e", f"org-b:{sid}::")
    assert api.get(DEATHS, key=org.key, query={"segment_id": sid, "cursor": stolen}).status == 422


def _calls_of(fn: Any) -> dict[str, int]:
    """DynamoDB calls (by operation) made while `fn` runs."""
    counts: dict[str, int] = {}

    def hook(model: Any, **kwargs: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    events = dynamo.client().meta.events
    events.register("before-call.dynamodb", hook)
    try:
        fn()
    finally:
        events.unregister("before-call.dynamodb", hook)
    return counts


def _segment_with(api: Api, org: Org, name: str, members: int, with_signals: int) -> str:
    sid = create_segment(api, org.key, name)
    pids = [f"p-{name}{i:05d}" for i in range(members)]
    add(api, org.key, sid, *pids)
    for i, pid in enumerate(pids[:with_signals]):
        ingest_usecase.ingest(
            parse(
                person_event(
                    "death", pid, event_id=f"evt-{name}-{i}", observed_at=f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"
                )
            )
        )
    return sid


def test_a_page_costs_the_same_whatever_the_segment_size(api: Api, org: Org, signals: Any) -> None:
    small = _segment_with(api, org, "small", 100, 100)
    large = _segment_with(api, org, "large", 3000, 100)
    api.get(DEATHS, key=org.key, query={"segment_id": small, "limit": 1})  # the authorizer's result is cached
    costs = []
    for sid in (small, large):

        def read(sid: str = sid) -> None:
            assert len(pids_of(api.get(DEATHS, key=org.key, query={"segment_id": sid, "limit": 100}))) == 100

        costs.append(_calls_of(read))
    assert costs[0] == costs[1]
    assert costs[0] == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
