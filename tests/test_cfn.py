"""tools.cfn: template loading, storage creation, function environment, routes and APIs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tools import cfn
from tools.moto_events import make_event_envelopes_faithful

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = cfn.load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def _load(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return cfn.load_template(path)


# ---------------------------------------------------------------- loading


def test_short_form_tags_become_long_form(tmp_path: Path) -> None:
    tpl = _load(
        tmp_path,
        """
        Values:
          ref: !Ref Thing
          att: !GetAtt Thing.Arn
          att_dotted: !GetAtt Db.Endpoint.Address
          att_list: !GetAtt [Thing, Arn]
          sub: !Sub "${Thing}-x"
          sub_list: !Sub ["${A}-y", {A: !Ref Thing}]
          if: !If [IsProd, a, b]
          join: !Join [",", [a, b]]
          select: !Select [0, !Split [",", "a,b"]]
          equals: !Equals [!Ref Env, prod]
          not: !Not [!Condition IsProd]
          and: !And [!Condition IsProd, !Condition IsEu]
          or: !Or [!Condition IsProd, !Condition IsEu]
          map: !FindInMap [Sizes, !Ref Env, Memory]
          b64: !Base64 hello
          import: !ImportValue shared-vpc
          azs: !GetAZs ""
          cidr: !Cidr ["10.0.0.0/16", 2, 8]
          date: "2010-09-09"
        """,
    )
    assert tpl["Values"] == {
        "ref": {"Ref": "Thing"},
        "att": {"Fn::GetAtt": ["Thing", "Arn"]},
        "att_dotted": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "att_list": {"Fn::GetAtt": ["Thing", "Arn"]},
        "sub": {"Fn::Sub": "${Thing}-x"},
        "sub_list": {"Fn::Sub": ["${A}-y", {"A": {"Ref": "Thing"}}]},
        "if": {"Fn::If": ["IsProd", "a", "b"]},
        "join": {"Fn::Join": [",", ["a", "b"]]},
        "select": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]},
        "equals": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "not": {"Fn::Not": [{"Condition": "IsProd"}]},
        "and": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "IsEu"}]},
        "or": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsEu"}]},
        "map": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]},
        "b64": {"Fn::Base64": "hello"},
        "import": {"Fn::ImportValue": "shared-vpc"},
        "azs": {"Fn::GetAZs": ""},
        "cidr": {"Fn::Cidr": ["10.0.0.0/16", 2, 8]},
        "date": "2010-09-09",
    }


def test_project_template_loads_with_tags() -> None:
    assert TEMPLATE["Transform"] == "AWS::Serverless-2016-10-31"
    assert TEMPLATE["Globals"]["Function"]["Layers"] == [{"Ref": "CoreLayer"}]
    assert RESOURCES["ApiKeyAuthorizerFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"] == {
        "Fn::GetAtt": ["SegmentsTable", "Arn"]
    }


def test_resolver_intrinsics(tmp_path: Path) -> None:
    tpl = _load(
        tmp_path,
        """
        Parameters:
          Env: {Type: String, Default: prod}
          Zones: {Type: CommaDelimitedList, Default: "a, b"}
        Mappings:
          Sizes: {prod: {Memory: 1024}}
        Conditions:
          IsProd: !Equals [!Ref Env, prod]
          IsDev: !Not [!Condition IsProd]
        Resources:
          Queue: {Type: AWS::SQS::Queue}
          Fifo: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
        Values:
          - !If [IsProd, big, small]
          - !If [IsDev, big, small]
          - !Select [1, !Split [",", "x,y,z"]]
          - !Join ["-", [!Ref Env, !Ref "AWS::Region"]]
          - !FindInMap [Sizes, !Ref Env, Memory]
          - !Sub "${AWS::StackName}/${Queue.Arn}/${Name}/${!Literal}"
          - !Sub ["${X}!", {X: !Ref Env}]
          - !Ref Zones
          - !GetAtt Fifo.QueueName
          - !Or [!Condition IsDev, !Equals [1, "1"]]
          - !If [IsDev, dropped, !Ref "AWS::NoValue"]
        """,
    )
    resolver = cfn.Resolver(tpl, resources={"Name": "the-name"})
    assert resolver.resolve(tpl["Values"]) == [
        "big",
        "small",
        "y",
        "prod-us-east-1",
        1024,
        f"{cfn.STACK_NAME}/arn:aws:sqs:us-east-1:123456789012:Queue/the-name/${{Literal}}",
        "prod!",
        ["a", "b"],
        "Fifo.fifo",
        True,
    ]
    assert cfn.Resolver(tpl, parameters={"Env": "dev"}).resolve(tpl["Values"][0]) == "small"


# ---------------------------------------------------------------- storage


def test_table_specs_equal_the_template() -> None:
    specs = cfn.table_specs(TEMPLATE)
    tables = cfn.resources_of(TEMPLATE, "AWS::DynamoDB::Table")
    assert set(specs) == set(tables) == {"SegmentsTable", "IdempotencyTable", "WebhooksTable"}
    for logical_id, props in tables.items():
        spec = specs[logical_id]
        assert spec["TableName"] == logical_id
        assert spec["BillingMode"] == "PAY_PER_REQUEST"
        assert spec["KeySchema"] == props["KeySchema"]
        assert spec["AttributeDefinitions"] == props["AttributeDefinitions"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            assert spec.get(key) == props.get(key)
        stream = props.get("StreamSpecification")
        assert spec.get("StreamSpecification") == (stream and {"StreamEnabled": True, **stream})


def test_create_tables_with_ttl() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        assert cfn.create_tables(client, TEMPLATE) == {
            "SegmentsTable": "SegmentsTable",
            "IdempotencyTable": "IdempotencyTable",
            "WebhooksTable": "WebhooksTable",
        }
        ttl = client.describe_time_to_live(TableName="WebhooksTable")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        table = client.describe_table(TableName="SegmentsTable")["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi3"}
        ttl = client.describe_time_to_live(TableName="IdempotencyTable")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}


STORAGE_TEMPLATE = """
    Resources:
      Stream:
        Type: AWS::DynamoDB::Table
        Properties:
          AttributeDefinitions: [{AttributeName: id, AttributeType: S}, {AttributeName: at, AttributeType: S}]
          KeySchema: [{AttributeName: id, KeyType: HASH}]
          BillingMode: PROVISIONED
          ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
          GlobalSecondaryIndexes:
            - IndexName: by_at
              KeySchema: [{AttributeName: at, KeyType: HASH}]
              Projection: {ProjectionType: KEYS_ONLY}
              ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
          StreamSpecification: {StreamViewType: NEW_IMAGE}
      Work:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 40
          MessageRetentionPeriod: 345600
          SqsManagedSseEnabled: true
          RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 3}
      Dead:
        Type: AWS::SQS::Queue
        Properties: {MessageRetentionPeriod: 1209600}
      Ordered:
        Type: AWS::SQS::Queue
        Properties: {FifoQueue: true, ContentBasedDeduplication: true}
      Bus:
        Type: AWS::Events::EventBus
        Properties: {Name: ignored-bus-name}
      ToWork:
        Type: AWS::Events::Rule
        Properties:
          EventBusName: !Ref Bus
          EventPattern: {source: [segments.people], detail-type: [Person Event]}
          Targets: [{Id: work, Arn: !GetAtt Work.Arn}]
"""


def test_table_specs_drop_provisioning_and_enable_streams(tmp_path: Path) -> None:
    spec = cfn.table_specs(_load(tmp_path, STORAGE_TEMPLATE))["Stream"]
    assert spec == {
        "TableName": "Stream",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_at",
                "KeySchema": [{"AttributeName": "at", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    }


def test_create_queues_and_buses_with_rules(tmp_path: Path) -> None:
    tpl = _load(tmp_path, STORAGE_TEMPLATE)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        urls = cfn.create_queues(sqs, tpl)
        assert set(urls) == {"Work", "Dead", "Ordered"}
        assert urls["Ordered"].endswith("/Ordered.fifo")
        attributes = sqs.get_queue_attributes(QueueUrl=urls["Work"], AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == "40"
        assert attributes["MessageRetentionPeriod"] == "345600"
        assert attributes["SqsManagedSseEnabled"] == "true"
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:Dead",
            "maxReceiveCount": 3,
        }
        fifo = sqs.get_queue_attributes(QueueUrl=urls["Ordered"], AttributeNames=["All"])["Attributes"]
        assert fifo["FifoQueue"] == "true"
        assert fifo["ContentBasedDeduplication"] == "true"

        assert cfn.create_buses(events, tpl, urls) == {"Bus": "Bus"}
        assert events.list_rules(EventBusName="Bus")["Rules"][0]["Name"] == "ToWork"
        rule = events.describe_rule(Name="ToWork", EventBusName="Bus")
        assert json.loads(rule["EventPattern"]) == {"source": ["segments.people"], "detail-type": ["Person Event"]}
        make_event_envelopes_faithful()
        events.put_events(
            Entries=[
                {"EventBusName": "Bus", "Source": "segments.people", "DetailType": detail_type, "Detail": detail}
                for detail_type, detail in (("Other", "{}"), ("Person Event", '{"a": 1}'))
            ]
        )
        messages = sqs.receive_message(QueueUrl=urls["Work"], WaitTimeSeconds=1, MaxNumberOfMessages=10)["Messages"]
        [body] = [json.loads(m["Body"]) for m in messages]  # only the matching event
        assert list(body) == [  # AWS's envelope, in its order
            "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"
        ]  # fmt: skip
        assert (body["account"], body["detail-type"], body["detail"]) == ("123456789012", "Person Event", {"a": 1})


def test_create_tables_enables_the_template_streams(tmp_path: Path) -> None:
    tpl = _load(tmp_path, STORAGE_TEMPLATE)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        cfn.create_tables(dynamodb, tpl)
        table = dynamodb.describe_table(TableName="Stream")["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        assert table["LatestStreamArn"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/Stream/stream/")


def test_stream_and_sqs_sources_carry_the_mapping_settings(tmp_path: Path) -> None:
    tpl = _load(
        tmp_path,
        """
        Resources:
          Table:
            Type: AWS::DynamoDB::Table
            Properties: {StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}}
          Queue: {Type: AWS::SQS::Queue}
          Failures: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Ledger:
                  Type: DynamoDB
                  Properties:
                    Stream: !GetAtt Table.StreamArn
                    StartingPosition: TRIM_HORIZON
                    BatchSize: 100
                    MaximumBatchingWindowInSeconds: 1
                    BisectBatchOnFunctionError: true
                    MaximumRetryAttempts: 10
                    MaximumRecordAgeInSeconds: 86400
                    FunctionResponseTypes: [ReportBatchItemFailures]
                    DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}}
                    FilterCriteria:
                      Filters:
                        - Pattern: '{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "L#"}]}}}}'
                Raw:
                  Type: DynamoDB
                  Properties:
                    Stream: arn:aws:dynamodb:us-east-1:123456789012:table/Table/stream/2024-01-01T00:00:00.000
                    StartingPosition: latest
                    Enabled: false
                People:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Queue.Arn
                    BatchSize: 10
                    MaximumBatchingWindowInSeconds: 2
                    FilterCriteria: {Filters: [{Pattern: '{"body": {"type": ["death"]}}'}]}
        """,
    )
    ledger, raw = cfn.stream_sources(tpl)
    assert ledger == cfn.StreamSource(
        function="Fn",
        table="Table",
        event="Ledger",
        starting_position="TRIM_HORIZON",
        batch_size=100,
        batching_window=1.0,
        bisect_on_error=True,
        max_retry_attempts=10,
        max_record_age=86400,
        report_batch_item_failures=True,
        filters=({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "L#"}]}}}},),
        on_failure="Failures",
        enabled=True,
    )
    assert (raw.table, raw.starting_position, raw.enabled, raw.batch_size, raw.max_retry_attempts) == (
        "Table", "LATEST", False, 100, -1
    )  # fmt: skip
    [people] = cfn.sqs_sources(tpl)
    assert (people.batch_size, people.batching_window, people.filters) == (10, 2.0, ({"body": {"type": ["death"]}},))


# ---------------------------------------------------------------- functions


def test_function_env_merges_globals_and_resolves_refs() -> None:
    env = cfn.function_env(TEMPLATE, "CreateSegmentFunction", {"SegmentsTable": "seg-t", "IdempotencyTable": "idem-t"})
    assert env == {
        "TABLE_NAME": "seg-t",
        "IDEMPOTENCY_TABLE_NAME": "idem-t",
        "MAX_PIDS_PER_REQUEST": "10000",
        "PID_VALIDATION": "format",
        "POWERTOOLS_SERVICE_NAME": "segments",
        "POWERTOOLS_METRICS_NAMESPACE": "Segments",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "LOG_LEVEL": "INFO",
    }
    overridden = cfn.function_env(TEMPLATE, "CreateSegmentFunction", {}, parameters={"LogLevel": "DEBUG"})
    assert overridden["LOG_LEVEL"] == "DEBUG"
    assert overridden["TABLE_NAME"] == "SegmentsTable"  # unknown resources: their logical id


def test_function_env_own_variables_win(tmp_path: Path) -> None:
    tpl = _load(
        tmp_path,
        """
        Globals:
          Function:
            Environment:
              Variables: {SHARED: global, MODE: global}
        Resources:
          Table: {Type: AWS::DynamoDB::Table}
          Queue: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Environment:
                Variables:
                  MODE: own
                  TABLE_ARN: !GetAtt Table.Arn
                  QUEUE_URL: !Ref Queue
                  QUEUE_ARN: !GetAtt Queue.Arn
                  GREETING: !Sub "hello ${Table} in ${AWS::Region}"
                  ENABLED: true
        """,
    )
    env = cfn.function_env(tpl, "Fn", {"Queue": "http://127.0.0.1:5000/123456789012/Queue"})
    assert env == {
        "SHARED": "global",
        "MODE": "own",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Table",
        "QUEUE_URL": "http://127.0.0.1:5000/123456789012/Queue",
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:Queue",
        "GREETING": "hello Table in us-east-1",
        "ENABLED": "true",
    }


def test_function_spec_merges_globals() -> None:
    fn = cfn.function(TEMPLATE, "ApiKeyAuthorizerFunction")
    assert fn == cfn.Function(
        logical_id="ApiKeyAuthorizerFunction",
        code_uri="functions/authorizer/",
        handler="handler.api_key_handler",
        memory_size=256,
        timeout=10,
    )
    assert cfn.function(TEMPLATE, "CreateSegmentFunction").memory_size == 512
    assert cfn.function(TEMPLATE, "CreateSegmentFunction").timeout == 28
    assert cfn.layer_dirs(TEMPLATE) == ["layers/core/"]


# ---------------------------------------------------------------- routes and APIs


def test_api_routes_cover_every_api_event() -> None:
    expected = set()
    for function_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "Api":
                p = event["Properties"]
                expected.add(
                    (
                        p["RestApiId"]["Ref"],
                        p["Path"],
                        p["Method"].upper(),
                        function_id,
                        props["CodeUri"],
                        props["Handler"],
                    )
                )
    routes = cfn.api_routes(TEMPLATE)
    assert len(routes) == len(expected)
    assert {(r.api, r.path, r.method, r.function, r.code_uri, r.handler) for r in routes} == expected
    assert {r.authorizer for r in routes if r.api == "MinervaApi"} == {"ApiKeyAuthorizer"}
    assert {r.authorizer for r in routes if r.api == "SheepApi"} == {"BearerAuthorizer"}
    create = [r for r in routes if r.path == "/v2/segments/create"]
    assert {(r.method, r.event) for r in create} == {("POST", "Create"), ("ANY", "CreateOtherMethods")}


def test_apis_describe_authorizers_and_gateway_responses() -> None:
    specs = cfn.apis(TEMPLATE)
    assert set(specs) == {"MinervaApi", "SheepApi"}
    minerva, sheep = specs["MinervaApi"], specs["SheepApi"]
    assert minerva.stage_name == sheep.stage_name == "v1"
    assert minerva.default_authorizer == "ApiKeyAuthorizer"
    assert minerva.authorizers["ApiKeyAuthorizer"] == cfn.Authorizer(
        name="ApiKeyAuthorizer",
        function="ApiKeyAuthorizerFunction",
        payload_type="REQUEST",
        headers=("x-api-key",),
        query_strings=(),
        reauthorize_every=300,
    )
    assert sheep.authorizers["BearerAuthorizer"].headers == ("Authorization",)
    assert sheep.authorizers["BearerAuthorizer"].function == "BearerAuthorizerFunction"
    for api_id, spec in specs.items():
        raw = RESOURCES[api_id]["Properties"]["GatewayResponses"]
        assert set(spec.gateway_responses) == set(raw)
        for response_type, response in spec.gateway_responses.items():
            assert response.status_code == raw[response_type]["StatusCode"]
            assert response.templates == raw[response_type]["ResponseTemplates"]
    assert (
        cfn.apis(TEMPLATE, parameters={"AuthorizerCacheTtl": 0})["SheepApi"]
        .authorizers["BearerAuthorizer"]
        .reauthorize_every
        == 0
    )


def test_routes_auth_none_implicit_api_and_sqs_sources(tmp_path: Path) -> None:
    tpl = _load(
        tmp_path,
        """
        Globals:
          Function: {CodeUri: src/, Handler: app.handler}
        Resources:
          Api:
            Type: AWS::Serverless::Api
            Properties:
              StageName: test
              Auth:
                DefaultAuthorizer: Token
                Authorizers:
                  Token: {FunctionArn: !GetAtt AuthFn.Arn}
              GatewayResponses:
                DEFAULT_4XX:
                  ResponseParameters: {Headers: {Access-Control-Allow-Origin: "'*'"}}
                  ResponseTemplates: {application/json: '{"m": $context.error.messageString}'}
          AuthFn: {Type: AWS::Serverless::Function}
          Queue: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Open:
                  Type: Api
                  Properties: {RestApiId: !Ref Api, Path: /open, Method: get, Auth: {Authorizer: NONE}}
                Closed:
                  Type: Api
                  Properties: {RestApiId: !Ref Api, Path: "/things/{proxy+}", Method: any}
                Implicit:
                  Type: Api
                  Properties: {Path: /implicit, Method: post}
                Work:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Queue.Arn
                    BatchSize: 5
                    FunctionResponseTypes: [ReportBatchItemFailures]
        """,
    )
    routes = {r.event: r for r in cfn.api_routes(tpl)}
    assert routes["Open"] == cfn.Route("Api", "/open", "GET", "Fn", "src/", "app.handler", None, "Open")
    assert routes["Closed"].method == "ANY"
    assert routes["Closed"].authorizer == "Token"
    assert routes["Implicit"].api == cfn.IMPLICIT_API
    assert routes["Implicit"].authorizer is None

    specs = cfn.apis(tpl)
    assert specs[cfn.IMPLICIT_API].stage_name == "Prod"
    token = specs["Api"].authorizers["Token"]
    assert (token.payload_type, token.headers, token.reauthorize_every) == ("TOKEN", ("Authorization",), 300)
    default_4xx = specs["Api"].gateway_responses["DEFAULT_4XX"]
    assert default_4xx.status_code is None
    assert default_4xx.headers == {"Access-Control-Allow-Origin": "*"}

    assert cfn.sqs_sources(tpl) == [
        cfn.SqsSource(
            function="Fn", queue="Queue", batch_size=5, report_batch_item_failures=True, enabled=True, event="Work"
        )
    ]
    assert {s.queue for s in cfn.sqs_sources(TEMPLATE)} <= set(cfn.resources_of(TEMPLATE, "AWS::SQS::Queue"))


@pytest.mark.parametrize("logical_id", sorted(cfn.resources_of(TEMPLATE, "AWS::Serverless::Function")))
def test_every_function_env_resolves_to_strings(logical_id: str) -> None:
    env = cfn.function_env(TEMPLATE, logical_id, {})
    assert env and all(isinstance(v, str) and "{" not in v for v in env.values())
