"""The test harness's moto patch keeps DynamoDB's transaction semantics while making them cheap,
undoes a cancelled transaction in place (the table and its stream shard stay the same objects,
so open stream iterators keep reading), and holds update expressions of a profile's size."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION

TABLE = "SegmentsTable"


def put(pk: str, condition: bool = True, **attrs: str) -> dict:
    item = {"pk": {"S": pk}, "sk": {"S": "x"}, **{name: {"S": value} for name, value in attrs.items()}}
    op: dict = {"TableName": TABLE, "Item": item}
    if condition:
        op["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": op}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}}


def backend_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT][REGION].tables[TABLE]


def stream_records(client: Any, iterator: str) -> tuple[list[dict[str, Any]], str]:
    page = client.get_records(ShardIterator=iterator)
    return page["Records"], page["NextShardIterator"]


def test_a_cancelled_transaction_reports_reasons_and_writes_nothing(aws: None) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    client.transact_write_items(TransactItems=[put("a")])
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[put("b"), put("a")])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName=TABLE, Key=key("b"))


def test_no_transaction_copies_a_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def spy(value, memo=None):
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)
    client = boto3.client("dynamodb", region_name=REGION)
    client.transact_write_items(TransactItems=[put("c"), put("d")])
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[put("e"), put("c")])
    assert copied == []
    assert "Item" in client.get_item(TableName=TABLE, Key=key("d"))
    assert "Item" not in client.get_item(TableName=TABLE, Key=key("e"))


def test_a_cancelled_transaction_is_undone_in_place(aws: None) -> None:
    """Put, Update (of an existing item and of a missing one) and Delete, then a failed condition:
    every item is as before, the table and its stream shard are the same objects, and the shard
    holds no record of the cancelled attempt."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.transact_write_items(TransactItems=[put("kept", colour="red"), put("gone", colour="blue"), put("blocker")])
    table, shard = backend_table(), backend_table().stream_shard
    records_before = len(shard.items)
    before = {pk: client.get_item(TableName=TABLE, Key=key(pk)).get("Item") for pk in ("kept", "gone", "new", "upd")}

    values = {":c": {"S": "x"}}
    update = {"TableName": TABLE, "UpdateExpression": "SET colour = :c", "ExpressionAttributeValues": values}
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(
            TransactItems=[
                put("new"),
                {"Update": {**update, "Key": key("kept")}},
                {"Update": {**update, "Key": key("upd")}},
                {"Delete": {"TableName": TABLE, "Key": key("gone")}},
                put("blocker"),  # exists: the condition fails last, after four writes
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert backend_table() is table and table.stream_shard is shard
    assert len(shard.items) == records_before
    after = {pk: client.get_item(TableName=TABLE, Key=key(pk)).get("Item") for pk in before}
    assert after == before
    assert after["kept"]["colour"] == {"S": "red"} and after["new"] is None and after["upd"] is None


def test_a_transaction_naming_its_table_by_arn_is_undone_too(aws: None) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    arn = client.describe_table(TableName=TABLE)["Table"]["TableArn"]
    client.transact_write_items(TransactItems=[put("by-arn-kept")])
    by_arn = put("by-arn-new")
    by_arn["Put"]["TableName"] = arn
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[by_arn, put("by-arn-kept")])
    assert "Item" not in client.get_item(TableName=TABLE, Key=key("by-arn-new"))


def test_an_item_named_twice_is_undone_in_place(aws: None) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    table = backend_table()
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[put("twice", condition=False), put("twice", condition=False)])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert backend_table() is table
    assert "Item" not in client.get_item(TableName=TABLE, Key=key("twice"))


def test_a_stream_reader_keeps_reading_after_a_cancelled_transaction(aws: None) -> None:
    """The iterator a reader holds before the cancellation reads the writes after it, and never
    the cancelled attempt's records."""
    client = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    client.transact_write_items(TransactItems=[put("first")])
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard_id = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
    records, iterator = stream_records(streams, iterator["ShardIterator"])
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["first"]

    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[put("cancelled"), put("first")])
    client.transact_write_items(TransactItems=[put("after")])
    client.put_item(TableName=TABLE, Item=put("single", condition=False)["Put"]["Item"])

    records, _ = stream_records(streams, iterator)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [
        ("INSERT", "after"),
        ("INSERT", "single"),
    ]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences == sorted(set(sequences))


@pytest.mark.parametrize("attributes", [200, 400])
def test_a_profile_of_the_documented_maximum_size_is_stored(aws: None, attributes: int) -> None:
    """A profile's merge is one SET action per attribute (plus five of the record's own): moto's
    recursive copy of that expression's tree failed with RecursionError from about 160 actions."""
    from segments.events.person_events import ATTRIBUTES_MAX
    from segments.store import signals

    assert attributes >= ATTRIBUTES_MAX
    profile = {f"attribute_{i:03d}": i for i in range(attributes)}
    assert signals.merge_profile("org-a", "p-big", profile, observed_at="2026-01-01T00:00:00Z")
    stored = signals.person("org-a", "p-big")
    assert stored is not None
    assert {name: stored[name] for name in profile} == profile
    newer = {name: value + 1 for name, value in profile.items()}
    assert signals.merge_profile("org-a", "p-big", newer, observed_at="2026-01-02T00:00:00Z")
    assert signals.person("org-a", "p-big")["attribute_199"] == 200
