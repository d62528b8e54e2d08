"""Person events DynamoDB could not store, or that say what the service would not do, are refused
as invalid events before anything is written: logged with the message id and the reason (never a
value), reported as the message's failure (the queue's redrive takes it to the DLQ)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.logs import captured_log_lines
from helpers.signals import (
    PID,
    add,
    create_segment,
    facts,
    failures,
    feed_pks,
    person_event,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
    sqs_batch,
    sqs_record,
)

from conftest import Api, Org
from segments.events.person_events import InvalidEvent, parse
from segments.store import people
from segments.store import signals as signal_store


def _refused(body: dict[str, Any], message_id: str = "msg-bad") -> list[dict[str, Any]]:
    """Run the consumer on one message; assert it failed alone and was logged as invalid."""
    with captured_log_lines() as lines:
        result = run("SignalsIngestFunction", sqs_batch([sqs_record(body, message_id=message_id)]))
    assert failures(result) == [message_id]
    invalid = [line for line in lines if line.get("message") == "invalid person event"]
    assert [line["message_id"] for line in invalid] == [message_id], lines
    return invalid


@pytest.mark.parametrize(
    "attributes",
    [
        {"m": {"": 1}},  # an empty map key
        {"x": 1e300},  # above 9.99E+125
        {"x": 1e-200},  # below 1E-130
        {"x": 1234567890123456789012345678901234567890},  # 40 significant digits
        {"x": [1, {"y": -(10**38 + 1)}]},  # 39 significant digits, nested
    ],
)
def test_profile_attributes_dynamodb_cannot_store_are_invalid(org: Org, signals: Any, attributes: Any) -> None:
    event = person_event("profile", PID, org_id=org.org_id, data={"attributes": {"name": "Ada", **attributes}})
    [line] = _refused(event)
    assert "attributes" in line["reason"]
    assert signal_store.person(org.org_id, PID) is None


def test_values_at_dynamodbs_bounds_are_stored(org: Org, signals: Any) -> None:
    attributes = {"big": 9.99e125, "small": 1e-130, "digits": 10**37 + 1, "negative": -(10**37)}
    event = person_event("profile", PID, org_id=org.org_id, data={"attributes": attributes})
    assert failures(run("SignalsIngestFunction", sqs_batch([sqs_record(event)]))) == []
    record = signal_store.person(org.org_id, PID)
    assert record is not None
    assert (record["digits"], record["negative"], record["small"]) == (10**37 + 1, -(10**37), 1e-130)


def test_lifecycle_data_dynamodb_cannot_store_is_invalid(api: Api, org: Org, signals: Any) -> None:
    sid = create_segment(api, org.key, "Tiny confidence")
    add(api, org.key, sid, PID)
    event = person_event("death", PID, data={"obituary_id": "o-1", "confidence_score": 1e-200})
    _refused(event)
    assert facts(PID) == [] and feed_pks(sid) == []


@pytest.mark.parametrize(
    "observed_at",
    [
        "9999-12-31T23:59:59-05:00",  # 10000-01-01 in UTC: the conversion overflows
        "9999-12-31T23:59:59.999999-00:01",
        "1900-01-01T00:30:00+01:00",  # 1899 in UTC
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_observed_at_outside_the_years_in_utc_is_invalid(api: Api, org: Org, signals: Any, observed_at: str) -> None:
    sid = create_segment(api, org.key, "Far future")
    add(api, org.key, sid, PID)
    _refused(person_event("death", PID, observed_at=observed_at))
    assert facts(PID) == [] and feed_pks(sid) == []


@pytest.mark.parametrize(
    ("observed_at", "stored"),
    [
        ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59.000000Z"),
        ("9999-12-31T23:59:59+05:00", "9999-12-31T18:59:59.000000Z"),
        ("1900-01-01T00:30:00-01:00", "1900-01-01T01:30:00.000000Z"),
    ],
)
def test_observed_at_at_the_edges_is_normalised(observed_at: str, stored: str) -> None:
    assert parse(person_event("death", PID, observed_at=observed_at)).observed_at == stored


@pytest.mark.parametrize("kind", ["death", "job_change", "relocation"])
def test_a_lifecycle_event_with_an_org_id_is_invalid(
    api: Api, org: Org, other_org: Org, signals: Any, kind: str
) -> None:
    """Lifecycle facts are global (every org holding the person gets them); an org_id would promise
    a scoping the service does not apply, so it is refused rather than ignored."""
    mine, theirs = create_segment(api, org.key, "Mine"), create_segment(api, other_org.key, "Theirs")
    add(api, org.key, mine, PID)
    add(api, other_org.key, theirs, PID)
    people.put(other_org.org_id, PID)
    [line] = _refused(person_event(kind, PID, org_id=org.org_id))
    assert "org_id" in line["reason"]
    assert feed_pks(mine) == [] and feed_pks(theirs) == [] and facts(PID) == []
    with pytest.raises(InvalidEvent):
        parse(person_event(kind, PID, org_id=org.org_id))
    assert parse(person_event(kind, PID, org_id=None)).org_id is None
