"""Fan-out reaches exactly the segments holding the person now, and facts of one instant settle
the same way in any order."""

from __future__ import annotations

import itertools
from typing import Any

import boto3
import pytest
from helpers.signals import (
    PID,
    REGION,
    add,
    create_segment,
    detected,
    failures,
    feed_pks,
    ingest,
    person_event,
    remove,
    signals_fixture,  # noqa: F401 - the `signals` fixture
)

from conftest import Api, Org
from segments.store import people
from segments.store import signals as signal_store


def test_a_removed_member_is_not_reached_by_fan_out(api: Api, org: Org, signals: Any) -> None:
    """Asserted on what fan-out writes and publishes, not on reads (which also filter removed members)."""
    left, stays = create_segment(api, org.key, "Left"), create_segment(api, org.key, "Stays")
    add(api, org.key, left, PID, "p-other")
    add(api, org.key, stays, PID)
    remove(api, org.key, left, PID)
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="SegmentsTable", Key={"pk": {"S": f"SEG#{left}"}, "sk": {"S": f"PID#{PID}"}}
    )["Item"]
    assert "gsi3pk" not in item and "gsi3sk" not in item  # out of "who holds this PID"
    assert signal_store.holders(PID).memberships == [(org.org_id, stays)]
    signals.publish()
    signals.bus.published()

    assert failures(ingest(person_event("death", PID))) == []
    assert feed_pks(left) == [] and len(feed_pks(stays)) == 1
    signals.publish()
    assert [d["segment_id"] for d in detected(signals.bus.published())] == [stays]


@pytest.mark.parametrize("order", list(itertools.permutations(["evt-a", "evt-b", "evt-c"])))
def test_facts_of_the_same_instant_settle_on_the_greatest_event_id_in_any_order(
    org: Org, signals: Any, order: tuple[str, ...]
) -> None:
    people.put(org.org_id, PID, {"name": "Ada"})
    at = "2024-03-01T00:00:00Z"
    for event_id in order:
        event = person_event(
            "job_change", PID, event_id=event_id, observed_at=at, data={"new_employer": f"Co {event_id}"}
        )
        assert failures(ingest(event)) == []
    record = signal_store.person(org.org_id, PID)
    assert record is not None
    assert (record["employer"], record["job_event_id"]) == ("Co evt-c", "evt-c")
    # An older instant never wins, whatever its id.
    late = person_event(
        "job_change", PID, event_id="evt-z", observed_at="2024-02-29T23:59:59Z", data={"new_employer": "Old"}
    )
    assert failures(ingest(late)) == []
    record = signal_store.person(org.org_id, PID)
    assert record is not None and record["employer"] == "Co evt-c"
