"""The IAM checker of tests/test_iam*.py: what each AWS call needs (IAM action and resource), a
function's policy statements as template.yaml gives them, whether they allow a call, and the
`recorder` fixture that records (function, action, resource) for every call a function makes."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest

from conftest import template
from segments import aws
from tools import cfn
from tools.local_stack import Functions

# SAM policy templates (https://github.com/aws/serverless-application-model, policy_templates.json)
# expanded to the DynamoDB actions they grant, on the table and its indexes.
SAM_POLICY_TEMPLATES: dict[str, list[str]] = {
    "DynamoDBCrudPolicy": [
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ],
    "DynamoDBReadPolicy": [
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    ],
    "DynamoDBWritePolicy": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# The IAM action each S3 operation the service uses needs (a multipart upload's calls are PutObject's).
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
}


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # dynamodb:GetItem
    resource: str  # the table's (or index's) ARN
    operation: str  # the API operation that needed it


def table_arn(table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{cfn.REGION}:{cfn.ACCOUNT_ID}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def required(operation: str, request: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(IAM action, resource ARN) pairs a DynamoDB request needs."""
    if operation in ("TransactWriteItems", "TransactGetItems"):
        for item in request.get("TransactItems", []):
            ((kind, spec),) = item.items()
            yield f"dynamodb:{_TRANSACT_ACTIONS[kind]}", table_arn(spec["TableName"])
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table in request.get("RequestItems", {}):
            yield f"dynamodb:{operation}", table_arn(table)
    elif operation in ("SendMessage", "SendMessageBatch"):
        yield f"sqs:{operation.removesuffix('Batch')}", queue_arn(request["QueueUrl"])
    elif operation == "GetSecretValue":  # a secret's ARN ends with a random suffix of 6 characters
        yield (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{cfn.REGION}:{cfn.ACCOUNT_ID}:secret:{request['SecretId']}-AbCdEf",
        )
    elif operation in ("Encrypt", "Decrypt"):  # the template's one key (Decrypt names none: the blob does)
        yield f"kms:{operation}", kms_key_arn("WebhookSecretsKey")
    elif operation == "PutEvents":
        for entry in request.get("Entries", []):
            bus = entry.get("EventBusName") or "default"
            yield "events:PutEvents", bus if bus.startswith("arn:") else bus_arn(bus)
    else:
        yield f"dynamodb:{operation}", table_arn(request["TableName"], request.get("IndexName"))


def queue_arn(url: str) -> str:
    return f"arn:aws:sqs:{cfn.REGION}:{cfn.ACCOUNT_ID}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def kms_key_arn(logical_id: str) -> str:
    return cfn.Resolver(template()).get_att(logical_id, "Arn")


def bus_arn(name: str) -> str:
    return f"arn:aws:events:{cfn.REGION}:{cfn.ACCOUNT_ID}:event-bus/{name}"


def policy_statements(tpl: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """A function's Allow statements, SAM policy templates expanded, intrinsics resolved."""
    resolver = cfn.Resolver(tpl)
    statements: list[dict[str, Any]] = []
    for policy in (tpl["Resources"][function].get("Properties") or {}).get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in resolver.resolve(policy["Statement"]):
                statements.append(statement)
            continue
        ((name, params),) = policy.items() if isinstance(policy, dict) else ((policy, None),)
        if name not in SAM_POLICY_TEMPLATES:
            raise AssertionError(f"{function}: policy {name!r} has no expansion in SAM_POLICY_TEMPLATES")
        table = resolver.resolve(params["TableName"])
        statements.append(
            {
                "Effect": "Allow",
                "Action": SAM_POLICY_TEMPLATES[name],
                "Resource": [table_arn(table), table_arn(table, "*")],
            }
        )
    return statements


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Allowed by some Allow statement and denied by none (actions are case-insensitive)."""

    def matches(statement: dict[str, Any]) -> bool:
        return any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement.get("Action", []))
        ) and any(fnmatch.fnmatchcase(resource, r) for r in _as_list(statement.get("Resource", [])))

    if any(s.get("Effect") == "Deny" and matches(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and matches(s) for s in statements)


class Recorder:
    """Which function is running (set around every invocation the gateway makes) and what it calls."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: set[Call] = set()
        self.routes: set[tuple[str, str, str]] = set()  # (function, resource path, method) invoked

    def s3_hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """S3 calls by their API parameters (a presigned URL is signed with them too: it needs the
        same right as the call it stands for)."""
        if self.function is None:
            return
        resource = f"arn:aws:s3:::{params['Bucket']}/{params.get('Key', '')}"
        self.calls.add(Call(self.function, S3_ACTIONS[model.name], resource, model.name))

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.function is None:
            return  # test setup, not a function
        body = params.get("body") or b"{}"
        request = json.loads(body) if isinstance(body, bytes | str) else dict(body)
        for action, resource in required(model.name, request):
            self.calls.add(Call(self.function, action, resource, model.name))


@pytest.fixture(name="recorder")
def recorder_fixture(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    create_client = botocore.session.Session.create_client
    invoke = Functions.invoke

    def hooked_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, service_name, *args, **kwargs)
        if service_name in ("dynamodb", "events", "sqs", "secretsmanager", "kms"):
            client.meta.events.register(f"before-call.{service_name}", rec.hook)
        if service_name == "s3":
            client.meta.events.register("before-parameter-build.s3", rec.s3_hook)
        return client

    def traced_invoke(self: Functions, logical_id: str, event: dict[str, Any]) -> Any:
        outer, rec.function = rec.function, logical_id
        if "httpMethod" in event and "resource" in event and event.get("type") != "REQUEST":
            rec.routes.add((logical_id, event["resource"], event["httpMethod"]))
        try:
            return invoke(self, logical_id, event)
        finally:
            rec.function = outer

    monkeypatch.setattr(botocore.session.Session, "create_client", hooked_client)
    monkeypatch.setattr(Functions, "invoke", traced_invoke)
    _reset_clients()  # clients made from now on carry the hook
    yield rec
    _reset_clients()


def _reset_clients() -> None:
    aws.reset()
