"""template.yaml for signals: the bus, the rule, the queue and its DLQ and alarm, the table's
stream and gsi3, and the four functions' event sources and scoped policies. Also the real path
bus -> rule -> queue -> ingest function, created from the template in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
from helpers.signals import add, create_segment, failures, feed_pks, person_event, run, sqs_record

from conftest import REGION, Api, Org, template
from tools import cfn

RESOURCES: dict[str, Any] = template()["Resources"]


def props(logical_id: str) -> dict[str, Any]:
    return dict(RESOURCES[logical_id]["Properties"])


def statements(function: str) -> list[dict[str, Any]]:
    return [s for policy in props(function)["Policies"] for s in policy["Statement"]]


def test_table_has_a_stream_and_the_cross_org_person_index() -> None:
    table = props("SegmentsTable")
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    [gsi3] = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "gsi3"]
    assert [k["AttributeName"] for k in gsi3["KeySchema"]] == ["gsi3pk", "gsi3sk"]
    # the memberships read (GET /v2/segments/memberships) takes its times from the index
    assert gsi3["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["first_added_at", "last_added_at"]}
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi3"}  # one person index


def test_person_events_queue_dlq_rule_and_alarm() -> None:
    queue, dlq = props("PersonEventsQueue"), props("PersonEventsDLQ")
    ingest_timeout = props("SignalsIngestFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * ingest_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["PersonEventsDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    rule = props("PersonEventsRule")
    assert rule["EventBusName"] == {"Ref": "SegmentsBus"}
    assert rule["EventPattern"] == {"source": ["segments.people"], "detail-type": ["Person Event"]}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PersonEventsQueue", "Arn"]}
    [statement] = props("PersonEventsQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["PersonEventsRule", "Arn"]}
    alarm = props("PersonEventsDLQAlarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["PersonEventsDLQ", "QueueName"]}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    outputs = template()["Outputs"]
    assert {"EventBusName", "PersonEventsQueueUrl", "PersonEventsDLQUrl"} <= set(outputs)


def test_ingest_consumes_the_queue_with_partial_batch_responses() -> None:
    [event] = props("SignalsIngestFunction")["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"] == {
        "Queue": {"Fn::GetAtt": ["PersonEventsQueue", "Arn"]},
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 2,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    [source] = [s for s in cfn.sqs_sources(template()) if s.function == "SignalsIngestFunction"]
    assert (source.function, source.queue, source.report_batch_item_failures) == (
        "SignalsIngestFunction",
        "PersonEventsQueue",
        True,
    )


def test_stream_consumers() -> None:
    """The publisher and the signal feed read the stream through the dispatcher: each its own FIFO
    queue (with a DLQ); the dispatcher's stream source holds the filters they had."""
    for function, queue in (("PublisherFunction", "PublisherQueue"), ("SignalFeedFunction", "SignalFeedQueue")):
        [event] = props(function)["Events"].values()
        assert event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue_props = template()["Resources"][queue]["Properties"]
        assert queue_props["FifoQueue"] is True and queue_props["RedrivePolicy"]["maxReceiveCount"] >= 1
    for function in ("StreamDispatcherFunction",):
        [event] = props(function)["Events"].values()
        assert event["Type"] == "DynamoDB"
        p = event["Properties"]
        assert p["Stream"] == {"Fn::GetAtt": ["SegmentsTable", "StreamArn"]}
        assert p["MaximumRetryAttempts"] >= 1 and p["BisectBatchOnFunctionError"] is True
        assert p["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailuresDLQ", "Arn"]}
        patterns = [json.loads(f["Pattern"]) for f in p["FilterCriteria"]["Filters"]]
        inserts = [x for x in patterns if x["eventName"] == ["INSERT"]]
        # MODIFYs: a segment's restore (deleted -> active, for the signal feed) and an export job's
        # finish (queued/running -> succeeded/failed, for the publisher); nothing else modified
        modified = [x for x in patterns if x["eventName"] == ["MODIFY"]]
        assert len(inserts) + len(modified) == len(patterns)
        images = [(x["dynamodb"]["OldImage"], x["dynamodb"]["NewImage"]) for x in modified]
        assert len(images) == 2
        assert ({"record_state": {"S": ["deleted"]}}, {"record_state": {"S": ["active"]}}) in images
        assert ({"status": {"S": ["queued", "running"]}}, {"status": {"S": ["succeeded", "failed"]}}) in images


def test_policies_are_exactly_what_each_function_calls() -> None:
    table = {"Fn::GetAtt": ["SegmentsTable", "Arn"]}
    assert statements("SignalsApiFunction") == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
            "Resource": table,
        }
    ]
    ingest = statements("SignalsIngestFunction")
    assert ingest[0]["Resource"] == table and set(ingest[0]["Action"]) == {
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
    }
    assert ingest[1] == {
        "Effect": "Allow",
        "Action": ["dynamodb:Query"],
        "Resource": {"Fn::Sub": "${SegmentsTable.Arn}/index/gsi3"},
    }
    assert statements("PublisherFunction") == [
        {"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": {"Fn::GetAtt": ["SegmentsBus", "Arn"]}}
    ]
    assert props("PublisherFunction")["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "SegmentsBus"}
    assert statements("SignalFeedFunction") == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:GetItem"],
            "Resource": table,
        }
    ]


def test_an_event_put_on_the_bus_reaches_the_queue_and_is_ingested(api: Api, org: Org) -> None:
    sid = create_segment(api, org.key, "Via the bus")
    add(api, org.key, sid, "p-viabus")
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    queues = cfn.create_queues(sqs, template())
    cfn.create_buses(events, template(), queues)
    put = events.put_events(
        Entries=[
            {
                "EventBusName": "SegmentsBus",
                "Source": "segments.people",
                "DetailType": "Person Event",
                "Detail": json.dumps(person_event("death", "p-viabus")),
            }
        ]
    )
    assert put["FailedEntryCount"] == 0
    messages = sqs.receive_message(QueueUrl=queues["PersonEventsQueue"], MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["detail-type"] == "Person Event" and body["source"] == "segments.people"
    record = sqs_record(messages[0]["Body"], message_id=messages[0]["MessageId"])
    assert failures(run("SignalsIngestFunction", {"Records": [record]})) == []
    assert len(feed_pks(sid)) == 1
    dlq = sqs.get_queue_attributes(QueueUrl=queues["PersonEventsQueue"], AttributeNames=["RedrivePolicy"])
    assert json.loads(dlq["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 5
