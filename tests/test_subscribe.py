"""tools.subscribe: the rule it creates receives our events for its org, and nothing else."""

from __future__ import annotations

import json

import boto3

from conftest import REGION, template
from tools import cfn, subscribe


def test_the_subscriber_gets_its_orgs_signal_events_only(aws: None) -> None:
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    resources = cfn.create_queues(sqs, template())
    cfn.create_buses(events, template(), resources)
    queue = subscribe.subscribe(
        events, sqs, bus="SegmentsBus", name="watch", org="org-a", detail_types=["Segment Signal Detected"]
    )
    entries = [
        {"Source": "segments", "DetailType": "Segment Signal Detected", "Detail": json.dumps({"org_id": "org-a"})},
        {"Source": "segments", "DetailType": "Segment Signal Detected", "Detail": json.dumps({"org_id": "org-b"})},
        {"Source": "segments", "DetailType": "Segment Membership Changed", "Detail": json.dumps({"org_id": "org-a"})},
        {"Source": "segments.people", "DetailType": "Person Event", "Detail": json.dumps({"org_id": "org-a"})},
    ]
    events.put_events(Entries=[{**e, "EventBusName": "SegmentsBus"} for e in entries])
    got = subscribe.drain(sqs, queue, wait_seconds=0)
    assert [(e["detail-type"], e["detail"]["org_id"]) for e in got] == [("Segment Signal Detected", "org-a")]
    assert subscribe.drain(sqs, queue, wait_seconds=0) == []  # read once
