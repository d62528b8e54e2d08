"""The local gateway over real HTTP, on a small template in a temporary directory whose tiny
handlers make every gateway path observable: routing, authorizers and their cache, gateway
responses, limits, errors. One stack for the class (moto's state is per process).
"""

from __future__ import annotations

import re
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from helpers.http import assert_gateway_ids, call

from tools import local_stack
from tools.local_stack import LocalStack, StackInfo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


# ---------------------------------------------------------------- a small template in a tmp dir

FAKE_TEMPLATE = """
Parameters:
  CacheTtl: {Type: Number, Default: 300}
Globals:
  Function:
    Runtime: python3.13
    Timeout: 5
    CodeUri: src/
    Environment:
      Variables:
        TABLE_NAME: !Ref Seen
        QUEUE_URL: !Ref Work
Resources:
  Seen:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 2}
  Dead:
    Type: AWS::SQS::Queue
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: bus}
  BusToWork:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [test.people]}
      Targets: [{Id: work, Arn: !GetAtt Work.Arn}]
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: test
      Auth:
        DefaultAuthorizer: Token
        Authorizers:
          Token:
            FunctionPayloadType: REQUEST
            FunctionArn: !GetAtt AuthFunction.Arn
            Identity: {Headers: [x-token], ReauthorizeEvery: !Ref CacheTtl}
      GatewayResponses:
        UNAUTHORIZED:
          StatusCode: "401"
          ResponseTemplates:
            application/json: '{"m": $context.error.messageString, "id": "$context.requestId"}'
        DEFAULT_4XX:
          ResponseTemplates:
            application/json: '{"family": "4xx", "m": "$context.error.message"}'
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: auth.handler}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.echo
      Events:
        Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/items/{item_id}", Method: GET}}
        Proxy: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/echo/{proxy+}", Method: ANY}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /open, Method: POST, Auth: {Authorizer: NONE}}
  AnyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.any_method
      Events:
        Any: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/items/{item_id}", Method: ANY}}
        Static: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /echo/static, Method: GET}}
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.broken
      Events:
        Boom: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /boom, Method: GET, Auth: {Authorizer: NONE}}}
        Bad: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /bad, Method: GET, Auth: {Authorizer: NONE}}}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: worker.handler
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
"""

AUTH_PY = """
CALLS = {"n": 0}


def handler(event, context):
    CALLS["n"] += 1
    token = next(v for k, v in event["headers"].items() if k.lower() == "x-token")
    if token == "nobody":
        raise Exception("Unauthorized")
    if token == "boom":
        raise RuntimeError("database down")
    if token == "junk":
        return {"principalId": "x"}
    api = event["methodArn"].split("/")[0]
    return {
        "principalId": "user-" + token,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "execute-api:Invoke",
                 "Resource": [api + "/*/*/echo/*", api + "/*/*/items/" + token]},
                {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": api + "/*/*/echo/forbidden"},
            ],
        },
        "context": {"calls": CALLS["n"], "admin": token == "alice", "who": token,
                    "type": event["type"], "arn": event["methodArn"]},
    }
"""

APP_PY = """
import json
import os


def echo(event, context):
    payload = {
        "event": event,
        "env": {"TABLE_NAME": os.environ.get("TABLE_NAME"), "QUEUE_URL": os.environ.get("QUEUE_URL")},
        "context": {"function_name": context.function_name, "memory": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis(), "arn": context.invoked_function_arn},
    }
    return {"statusCode": 200, "headers": {"x-handler": "echo"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]}, "body": json.dumps(payload)}


def any_method(event, context):
    return {"statusCode": 202, "headers": {"Content-Type": "text/plain"}, "body": "any " + event["resource"]}


def broken(event, context):
    if event["path"] == "/boom":
        raise ValueError("secret table name in a stack trace")
    return {"statusCode": 200, "body": {"not": "a string"}}
"""

WORKER_PY = """
import json
import boto3

TABLE = boto3.resource("dynamodb").Table(__import__("os").environ["TABLE_NAME"])


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body.startswith("{"):
            body = json.loads(body)["detail"]["id"]
        if body.startswith("poison"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        TABLE.put_item(Item={"pk": body, "source": record["eventSourceARN"], "shape": sorted(record)})
    return {"batchItemFailures": failures}
"""


@pytest.fixture(scope="class")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    root = tmp_path_factory.mktemp("fake-stack")
    (root / "src").mkdir()
    (root / "template.yaml").write_text(FAKE_TEMPLATE)
    for name, code in {"auth.py": AUTH_PY, "app.py": APP_PY, "worker.py": WORKER_PY}.items():
        (root / "src" / name).write_text(textwrap.dedent(code))
    with LocalStack(root / "template.yaml", port=0, moto_port=0, create_demo_key=False) as running:
        assert running.info is not None
        yield running.info


class TestGatewayBehaviour:
    def test_proxy_event_shape(self, fake: StackInfo) -> None:
        reply = call(
            fake.api_url,
            "POST",
            "/echo/a/b%20c?x=1&x=2&y=",
            body=b'{"hello": "world"}',
            headers={"x-token": "alice", "X-Multi": "1", "content-type": "application/json"},
        )
        assert reply.status == 200, reply.body
        assert reply.headers["x-handler"] == "echo"
        assert reply.headers["Content-Type"] == "application/json"
        payload = reply.json
        event = payload["event"]
        assert event["resource"] == "/echo/{proxy+}"
        assert event["path"] == "/echo/a/b c"
        assert event["httpMethod"] == "POST"
        assert event["pathParameters"] == {"proxy": "a/b c"}
        assert event["queryStringParameters"] == {"x": "2", "y": ""}
        assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
        assert event["headers"]["X-Multi"] == "1" and event["multiValueHeaders"]["X-Multi"] == ["1"]
        assert event["stageVariables"] is None
        assert event["body"] == '{"hello": "world"}' and event["isBase64Encoded"] is False
        ctx = event["requestContext"]
        assert ctx["accountId"] == "123456789012"
        assert ctx["stage"] == "test" and ctx["path"] == "/test/echo/a/b c"
        assert ctx["resourcePath"] == "/echo/{proxy+}" and ctx["httpMethod"] == "POST"
        assert ctx["requestId"] == reply.headers["x-amzn-RequestId"]
        assert re.match(r"^[0-9a-f-]{36}$", ctx["requestId"])
        assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userAgent"].startswith("Python-urllib")
        assert isinstance(ctx["requestTimeEpoch"], int) and ctx["protocol"] == "HTTP/1.1"
        authorizer = ctx["authorizer"]
        assert authorizer["principalId"] == "user-alice"
        assert authorizer["admin"] == "true" and authorizer["who"] == "alice" and authorizer["type"] == "REQUEST"
        assert authorizer["arn"] == f"arn:aws:execute-api:us-east-1:123456789012:{ctx['apiId']}/test/POST/echo/a/b c"
        assert isinstance(authorizer["integrationLatency"], int)
        assert payload["env"]["TABLE_NAME"] == "Seen"
        assert payload["env"]["QUEUE_URL"].startswith(fake.moto_url) and payload["env"]["QUEUE_URL"].endswith("/Work")
        assert payload["context"]["function_name"] == "EchoFunction"
        assert 0 < payload["context"]["remaining"] <= 5000

    def test_request_ids_are_fresh(self, fake: StackInfo) -> None:
        ids = {call(fake.api_url, "POST", "/open").headers["x-amzn-RequestId"] for _ in range(3)}
        assert len(ids) == 3

    def test_concurrent_requests(self, fake: StackInfo) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda i: call(fake.api_url, "POST", f"/open?i={i}"), range(24)))
        assert [r.status for r in replies] == [200] * 24
        assert [r.json["event"]["queryStringParameters"]["i"] for r in replies] == [str(i) for i in range(24)]

    def test_no_body_no_query_no_authorizer(self, fake: StackInfo) -> None:
        event = call(fake.api_url, "POST", "/open").json["event"]
        assert event["body"] is None
        assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
        assert event["pathParameters"] is None
        assert "authorizer" not in event["requestContext"]

    def test_binary_body_is_base64(self, fake: StackInfo) -> None:
        event = call(fake.api_url, "POST", "/open", body=b"\xff\xfe\x00").json["event"]
        assert event["isBase64Encoded"] is True and event["body"] == "//4A"

    def test_multi_value_response_headers(self, fake: StackInfo) -> None:
        request = urllib.request.Request(fake.api_url + "/open", data=b"", method="POST")
        with urllib.request.urlopen(request) as response:
            assert response.headers.get_all("set-cookie") == ["a=1", "b=2"]

    def test_specific_method_beats_any_and_static_beats_greedy(self, fake: StackInfo) -> None:
        get = call(fake.api_url, "GET", "/items/alice", headers={"x-token": "alice"})
        assert get.status == 200 and get.json["event"]["pathParameters"] == {"item_id": "alice"}
        encoded = call(fake.api_url, "DELETE", "/items/a%2Fb", headers={"x-token": "a/b"})
        assert (encoded.status, encoded.body) == (202, b"any /items/{item_id}")
        delete = call(fake.api_url, "DELETE", "/items/alice", headers={"x-token": "alice"})
        assert (delete.status, delete.body) == (202, b"any /items/{item_id}")
        assert delete.headers["Content-Type"] == "text/plain"
        static = call(fake.api_url, "GET", "/echo/static", headers={"x-token": "alice"})
        assert (static.status, static.body) == (202, b"any /echo/static")

    def test_missing_identity_is_401_without_calling_the_authorizer(self, fake: StackInfo) -> None:
        reply = call(fake.api_url, "GET", "/echo/x")
        assert reply.status == 401
        request_id = assert_gateway_ids(reply)
        assert reply.json == {"m": "Unauthorized", "id": request_id}
        assert reply.headers["x-amzn-ErrorType"] == "UnauthorizedException"

    def test_authorizer_unauthorized_is_401(self, fake: StackInfo) -> None:
        reply = call(fake.api_url, "GET", "/echo/x", headers={"x-token": "nobody"})
        assert reply.status == 401 and reply.json["m"] == "Unauthorized"

    def test_authorizer_errors_are_500(self, fake: StackInfo) -> None:
        for token in ("boom", "junk"):
            reply = call(fake.api_url, "GET", "/echo/x", headers={"x-token": token})
            assert reply.status == 500
            assert reply.json == {"message": None}  # API Gateway's built-in body: no DEFAULT_5XX here
            assert b"database down" not in reply.body
            assert_gateway_ids(reply)

    def test_policy_denies_other_resources_from_the_cache(self, fake: StackInfo) -> None:
        first = call(fake.api_url, "GET", "/echo/one", headers={"x-token": "bob"})
        calls = first.json["event"]["requestContext"]["authorizer"]["calls"]
        second = call(fake.api_url, "GET", "/echo/two", headers={"x-token": "bob"})
        assert second.json["event"]["requestContext"]["authorizer"]["calls"] == calls  # cached
        assert second.json["event"]["requestContext"]["authorizer"]["integrationLatency"] == 0
        assert call(fake.api_url, "GET", "/items/bob", headers={"x-token": "bob"}).status == 200
        # The cached policy does not cover another item: 403 with the DEFAULT_4XX body.
        other = call(fake.api_url, "GET", "/items/carol", headers={"x-token": "bob"})
        assert other.status == 403
        assert other.json == {"family": "4xx", "m": "User is not authorized to access this resource"}
        denied = call(fake.api_url, "GET", "/echo/forbidden", headers={"x-token": "bob"})
        assert denied.status == 403
        assert denied.json["m"].endswith("with an explicit deny")
        # Another identity is authorized on its own.
        dave = call(fake.api_url, "GET", "/echo/one", headers={"x-token": "dave"})
        assert dave.json["event"]["requestContext"]["authorizer"]["calls"] != calls

    def test_unknown_route_and_method(self, fake: StackInfo) -> None:
        for method, path in (("GET", "/nowhere"), ("POST", "/items/x/y"), ("PUT", "/open")):
            reply = call(fake.api_url, method, path, headers={"x-token": "alice"})
            assert reply.status == 403  # MISSING_AUTHENTICATION_TOKEN's own status; DEFAULT_4XX body
            assert reply.json == {"family": "4xx", "m": "Missing Authentication Token"}
            assert reply.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

    def test_function_errors_are_502_without_details(self, fake: StackInfo) -> None:
        for path in ("/boom", "/bad"):
            reply = call(fake.api_url, "GET", path)
            assert reply.status == 502
            assert reply.json == {"message": "Internal server error"}
            assert b"secret" not in reply.body
            assert_gateway_ids(reply)

    def test_too_large_body(self, fake: StackInfo) -> None:
        reply = call(fake.api_url, "POST", "/open", body=b"x" * (local_stack.MAX_BODY_BYTES + 1))
        assert reply.status == 413
        assert reply.json == {"family": "4xx", "m": "Request Too Long"}
        assert call(fake.api_url, "POST", "/open", body=b"x" * local_stack.MAX_BODY_BYTES).status == 200

    def test_sqs_poller_deletes_successes_and_retries_failures(self, fake: StackInfo) -> None:
        sqs = boto3.client("sqs", endpoint_url=fake.moto_url, region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", endpoint_url=fake.moto_url, region_name="us-east-1")
        events = boto3.client("events", endpoint_url=fake.moto_url, region_name="us-east-1")
        work = sqs.get_queue_url(QueueName="Work")["QueueUrl"]
        dead = sqs.get_queue_url(QueueName="Dead")["QueueUrl"]
        for body in ("m1", "m2", "poison-1", "m3"):
            sqs.send_message(QueueUrl=work, MessageBody=body)
        events.put_events(
            Entries=[{"EventBusName": "Bus", "Source": "test.people", "DetailType": "Person", "Detail": '{"id": "e1"}'}]
        )

        deadline = time.monotonic() + 30
        seen: set[str] = set()
        dead_bodies: list[str] = []
        while time.monotonic() < deadline and (len(seen) < 4 or not dead_bodies):
            seen = {item["pk"]["S"] for item in dynamodb.scan(TableName="Seen")["Items"]}
            if not dead_bodies:
                dead_bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=dead).get("Messages", [])]
            time.sleep(0.3)
        assert seen == {"m1", "m2", "m3", "e1"}
        assert dead_bodies == ["poison-1"]  # failed twice (maxReceiveCount 2), then redriven
        item = dynamodb.get_item(TableName="Seen", Key={"pk": {"S": "m1"}})["Item"]
        assert item["source"]["S"] == "arn:aws:sqs:us-east-1:123456789012:Work"
        assert [v["S"] for v in item["shape"]["L"]] == sorted(
            [
                "messageId",
                "receiptHandle",
                "body",
                "attributes",
                "messageAttributes",
                "md5OfBody",
                "eventSource",
                "eventSourceARN",
                "awsRegion",
            ]
        )
        attributes = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
