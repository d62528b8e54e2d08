"""The test harness's moto patch keeps DynamoDB's transaction semantics while making them cheap."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError


def put(pk: str, condition: bool = True) -> dict:
    op: dict = {"TableName": "SegmentsTable", "Item": {"pk": {"S": pk}, "sk": {"S": "x"}}}
    if condition:
        op["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": op}


def test_a_cancelled_transaction_reports_reasons_and_writes_nothing(aws: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.transact_write_items(TransactItems=[put("a")])
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[put("b"), put("a")])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName="SegmentsTable", Key={"pk": {"S": "b"}, "sk": {"S": "x"}})


def test_a_successful_transaction_does_not_copy_the_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def spy(value, memo=None):
        if isinstance(value, Table):
            copied.append(value.name)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", spy)
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.transact_write_items(TransactItems=[put("c"), put("d")])
    assert copied == []
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[put("e"), put("c")])
    assert set(copied) == {"SegmentsTable"}  # the failing one takes moto's own (copying) path
    assert "Item" in client.get_item(TableName="SegmentsTable", Key={"pk": {"S": "d"}, "sk": {"S": "x"}})
