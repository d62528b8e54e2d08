"""Watch the events the service puts on its bus, as a downstream subscriber would.

    python -m tools.subscribe [--org ORG] [--detail-type TYPE ...] [--seconds N]

Creates (or reuses) an SQS queue and an EventBridge rule on the service's bus matching `source`
`segments` (and the org and detail types given), then prints each event that arrives as one JSON
line. Against the local stack by default (AWS_ENDPOINT_URL=http://127.0.0.1:5000); it is the same
rule a deployment would use (README: "Subscribing downstream"). Stops after --seconds, or Ctrl-C;
when the endpoint stops answering (the stack stopped) it says so in one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

LOCAL = "http://127.0.0.1:5000"
DETAIL_TYPES = ("Segment Signal Detected", "Segment Membership Changed")


def pattern(org: str | None, detail_types: list[str]) -> dict[str, Any]:
    """The rule's event pattern: our source, these detail types, one org if given."""
    rule: dict[str, Any] = {"source": ["segments"], "detail-type": detail_types}
    if org:
        rule["detail"] = {"org_id": [org]}
    return rule


def subscribe(events: Any, sqs: Any, *, bus: str, name: str, org: str | None, detail_types: list[str]) -> str:
    """Create the queue and the rule (idempotent); returns the queue URL."""
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern(org, detail_types)))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return str(queue_url)


def drain(sqs: Any, queue_url: str, wait_seconds: int = 1) -> list[dict[str, Any]]:
    """The events waiting on the queue (deleted once read)."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
    found = []
    for message in messages.get("Messages", []):
        found.append(json.loads(message["Body"]))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.subscribe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--org", default=None, help="only this org's events")
    parser.add_argument("--detail-type", action="append", dest="detail_types", help="repeatable; default both")
    parser.add_argument("--bus", default=os.environ.get("EVENT_BUS_NAME", "SegmentsBus"))
    parser.add_argument("--name", default="segments-subscriber", help="queue and rule name")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ENDPOINT_URL", LOCAL)
    for name, value in (
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ):
        os.environ.setdefault(name, value)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    try:
        sqs, events = boto3.client("sqs"), boto3.client("events")
        queue_url = subscribe(
            events,
            sqs,
            bus=args.bus,
            name=args.name,
            org=args.org,
            detail_types=args.detail_types or list(DETAIL_TYPES),
        )
        print(f"# subscribed: rule {args.name} on bus {args.bus} -> {queue_url}", flush=True)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            for event in drain(sqs, queue_url):
                print(json.dumps({"detail-type": event.get("detail-type"), "detail": event.get("detail")}), flush=True)
    except KeyboardInterrupt:
        pass
    except (BotoCoreError, ClientError) as exc:  # the stack stopped, or was never there: one line, no traceback
        print(f"python -m tools.subscribe: {endpoint} does not answer ({exc}); is the stack running?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
