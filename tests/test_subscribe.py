"""tools.subscribe: the rule it creates receives our events for its org, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
from moto.server import ThreadedMotoServer

from conftest import REGION, ROOT, template
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


def test_the_stack_stopping_ends_it_with_one_line(aws_env: None) -> None:
    """Run as the README runs it; when moto goes away it says so and exits 1, without a traceback."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    events = boto3.client("events", endpoint_url=endpoint, region_name=REGION)
    events.create_event_bus(Name="SegmentsBus")
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-m", "tools.subscribe", "--org", "demo-org", "--seconds", "60"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as watcher:  # fmt: skip
        try:
            assert watcher.stdout is not None and watcher.stdout.readline().startswith("# subscribed: rule")
        finally:
            server.stop()
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 1
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"python -m tools.subscribe: {endpoint} does not answer") and "is the stack running?" in err
