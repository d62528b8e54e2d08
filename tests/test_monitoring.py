"""template.yaml's operations side: alarms, the dashboard, access logs, the SnapStart option.

Every AWS::Serverless::Function, stream consumer, API, table and dead-letter queue has its alarms
and its place on the dashboard, whoever adds it (tools.monitoring.missing_coverage reads the
template, not the generator's intentions): a function or a queue added without them fails here,
and `make monitoring` writes what they need.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from segments.observability import NAMESPACE, SERVICE
from tools import cfn, monitoring

TEXT = monitoring.TEMPLATE.read_text(encoding="utf-8")
TPL = cfn.load_template(monitoring.TEMPLATE)
RESOURCES: dict[str, Any] = TPL["Resources"]
PARAMETERS: dict[str, Any] = TPL["Parameters"]
ALARMS = cfn.resources_of(TPL, "AWS::CloudWatch::Alarm")
FUNCTIONS = cfn.resources_of(TPL, cfn.SERVERLESS_FUNCTION)
APIS = cfn.resources_of(TPL, cfn.SERVERLESS_API)


def _dashboard_text() -> str:
    [dashboard] = cfn.resources_of(TPL, "AWS::CloudWatch::Dashboard").values()
    return str(dashboard["DashboardBody"]["Fn::Sub"])


# ------------------------------------------------------------------ coverage


def test_the_generated_block_is_current() -> None:
    assert monitoring.render(TEXT) == TEXT, "run `make monitoring` (python -m tools.monitoring)"


def test_every_function_queue_api_and_table_has_its_alarms_and_a_place_on_the_dashboard() -> None:
    assert monitoring.missing_coverage(TPL) == []


NEW_WORK = """
  ReportDLQ:
    Type: AWS::SQS::Queue
  ReportQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: { deadLetterTargetArn: !GetAtt ReportDLQ.Arn, maxReceiveCount: 5 }
  ReportFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/export/
      Handler: handler.lambda_handler
      Timeout: 120
      Events:
        Jobs:
          Type: SQS
          Properties: { Queue: !GetAtt ReportQueue.Arn }
"""


def _with_new_work(text: str) -> str:
    """The template with a function, its queue and that queue's dead-letter queue added by hand."""
    before, block, after = monitoring.split(text)
    return before + NEW_WORK.lstrip("\n") + "\n" + block + "\n\n" + after


def test_a_function_and_a_queue_added_without_alarms_fail_until_the_block_is_regenerated(tmp_path: Path) -> None:
    added = tmp_path / "template.yaml"
    added.write_text(_with_new_work(TEXT), encoding="utf-8")
    missing = monitoring.missing_coverage(cfn.load_template(added))
    assert missing == [
        "ReportFunction: no Errors alarm",
        "ReportFunction: no Throttles alarm",
        "ReportFunction: no Duration alarm",
        "ReportFunction: Errors not on the dashboard",
        "ReportFunction: Throttles not on the dashboard",
        "ReportFunction: Duration not on the dashboard",
        "ReportDLQ: no ApproximateNumberOfMessagesVisible alarm",
        "ReportDLQ: ApproximateNumberOfMessagesVisible not on the dashboard",
    ]
    added.write_text(monitoring.render(added.read_text(encoding="utf-8")), encoding="utf-8")
    regenerated = cfn.load_template(added)
    assert monitoring.missing_coverage(regenerated) == []
    duration = regenerated["Resources"]["ReportFunctionDurationAlarm"]["Properties"]
    assert (duration["ExtendedStatistic"], duration["Threshold"]) == ("p99", 96_000)  # 80 % of 120 s


def test_a_new_failure_count_in_the_code_needs_an_alarm_and_a_new_count_a_place_on_the_dashboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emitted = {**monitoring.emitted_metrics(), "courier": ["CourierDeliveries", "CourierDeliveriesFailed"]}
    monkeypatch.setattr(monitoring, "emitted_metrics", lambda: emitted)
    assert monitoring.missing_coverage(TPL) == [
        "CourierDeliveriesFailed: no CourierDeliveriesFailed alarm",
        "CourierDeliveries: CourierDeliveries not on the dashboard",
        "CourierDeliveriesFailed: CourierDeliveriesFailed not on the dashboard",
    ]
    alarm = ALARMS["EventsNotPublishedAlarm"]
    assert (alarm["Namespace"], alarm["Dimensions"]) == (NAMESPACE, [{"Name": "service", "Value": SERVICE}])


def test_an_alarm_without_the_topic_is_reported() -> None:
    changed = copy.deepcopy(TPL)
    changed["Resources"]["RebuildDLQAlarm"]["Properties"].pop("OKActions")
    assert monitoring.missing_coverage(changed) == ["RebuildDLQAlarm: OKActions is not the AlarmTopicArn topic"]


def test_dead_letter_queues_are_found_wherever_they_are_named(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            """
            Resources:
              Work: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt Redriven.Arn}}}
              Redriven: {Type: AWS::SQS::Queue}
              StreamFailed: {Type: AWS::SQS::Queue}
              AsyncFailed: {Type: AWS::SQS::Queue}
              InvokeFailed: {Type: AWS::SQS::Queue}
              Undelivered: {Type: AWS::SQS::Queue}
              SpareDLQ: {Type: AWS::SQS::Queue}
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt AsyncFailed.Arn}
                  EventInvokeConfig:
                    DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt InvokeFailed.Arn}}
                  Events:
                    Changes:
                      Type: DynamoDB
                      Properties:
                        Stream: arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x
                        DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt StreamFailed.Arn}}
              Rule:
                Type: AWS::Events::Rule
                Properties:
                  Targets: [{Id: t, Arn: !GetAtt Work.Arn, DeadLetterConfig: {Arn: !GetAtt Undelivered.Arn}}]
            """
        ),
        encoding="utf-8",
    )
    template = cfn.load_template(path)
    assert monitoring.dead_letter_queues(template) == [
        "AsyncFailed", "InvokeFailed", "Redriven", "SpareDLQ", "StreamFailed", "Undelivered"
    ]  # fmt: skip
    assert monitoring.stream_consumers(template) == ["Fn"]


def test_the_template_s_redrive_targets_and_failure_destinations_are_its_dead_letter_queues() -> None:
    named = {
        str(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
        for queue in RESOURCES.values()
        if queue["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in queue.get("Properties", {})
    }
    named |= {s.on_failure for s in cfn.stream_sources(TPL) if s.on_failure}
    assert named and named <= set(monitoring.dead_letter_queues(TPL))


# ------------------------------------------------------------------ alarms


@pytest.mark.parametrize("topic", ["", "arn:aws:sns:eu-west-1:123456789012:segments-oncall"])
def test_alarm_actions_are_the_topic_parameter_or_nothing(topic: str) -> None:
    parameter = PARAMETERS[monitoring.TOPIC_PARAMETER]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], topic)
    resolver = cfn.Resolver(TPL, parameters={monitoring.TOPIC_PARAMETER: topic})
    assert ALARMS
    for alarm in ALARMS.values():
        for key in ("AlarmActions", "OKActions"):
            assert resolver.resolve(alarm[key]) == ([topic] if topic else [])


def test_lambda_alarms_watch_each_function_by_name() -> None:
    for fn in FUNCTIONS:
        errors = ALARMS[f"{fn}ErrorsAlarm"]
        assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": fn}}]
        timeout = cfn.function(TPL, fn).timeout
        assert ALARMS[f"{fn}DurationAlarm"]["Threshold"] == int(0.8 * timeout * 1000)


def test_api_rate_alarms_divide_errors_by_requests_of_that_stage() -> None:
    for api, props in APIS.items():
        for label, metric in (("ServerErrorRate", "5XXError"), ("ClientErrorSpike", "4XXError")):
            queries = {q["Id"]: q for q in ALARMS[f"{api}{label}Alarm"]["Metrics"]}
            assert [q["Id"] for q in queries.values() if q["ReturnData"]] == ["rate"]
            assert re.fullmatch(r"IF\(requests >= \d+, 100 \* errors / requests, 0\)", queries["rate"]["Expression"])
            for query_id, name in (("errors", metric), ("requests", "Count")):
                stat = queries[query_id]["MetricStat"]
                assert (stat["Metric"]["MetricName"], stat["Stat"]) == (name, "Sum")
                assert stat["Metric"]["Dimensions"] == [
                    {"Name": "ApiName", "Value": props["Name"]},
                    {"Name": "Stage", "Value": props["StageName"]},
                ]


def test_table_alarms_sum_every_operation_of_that_table() -> None:
    for table in cfn.resources_of(TPL, "AWS::DynamoDB::Table"):
        for label, metric in (("Throttles", "ThrottledRequests"), ("SystemErrors", "SystemErrors")):
            [query] = ALARMS[f"{table}{label}Alarm"]["Metrics"]
            assert query["Expression"] == {
                "Fn::Sub": f'SELECT SUM({metric}) FROM SCHEMA("AWS/DynamoDB", Operation, TableName) '
                f"WHERE TableName = '${{{table}}}'"
            }


# ------------------------------------------------------------------ the dashboard


def test_the_dashboard_is_json_naming_only_what_the_template_defines() -> None:
    text = _dashboard_text()
    body = json.loads(text)
    known = set(RESOURCES) | set(PARAMETERS)
    for name in re.findall(r"\$\{([^}]+)\}", text):
        assert name.startswith("AWS::") or name.split(".")[0] in known, name
    alarm_widgets = [w for w in body["widgets"] if w["type"] == "alarm"]
    shown = [a for w in alarm_widgets for a in w["properties"]["alarms"]]
    assert all(len(w["properties"]["alarms"]) <= 100 for w in alarm_widgets)
    assert sorted(shown) == sorted("${" + a + ".Arn}" for a in ALARMS)


def test_the_dashboard_shows_every_metric_the_core_emits() -> None:
    emitted = [name for names in monitoring.emitted_metrics().values() for name in names]
    # the business figures: segments created, PIDs added, signals ingested, events published
    assert {"SegmentsCreated", "MembersAdded", "SignalsStored", "EventsPublished"} <= set(emitted)
    lines = monitoring.dashboard_metrics(TPL)
    for name in emitted:
        assert [NAMESPACE, name, "service", SERVICE] in [line[:4] for line in lines], name
    assert f"SEARCH('{{{NAMESPACE},service}} Errors', 'Sum', 300)" in _dashboard_text()  # Errors<status>


# ------------------------------------------------------------------ access logs


@pytest.mark.parametrize("api", sorted(APIS))
def test_each_stage_writes_json_access_logs_to_a_kept_log_group(api: str) -> None:
    props = APIS[api]
    assert RESOURCES[api]["DependsOn"] == "ApiGatewayAccount"
    setting = props["AccessLogSetting"]
    group = setting["DestinationArn"]["Fn::GetAtt"]
    assert group[1] == "Arn" and RESOURCES[group[0]]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group[0]]["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    line = json.loads(setting["Format"])  # every value is a quoted $context variable: valid JSON
    assert {
        "requestId": "$context.requestId",
        "orgId": "$context.authorizer.org_id",
        "keyId": "$context.authorizer.key_id",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
    }.items() <= line.items()
    assert all(isinstance(v, str) and v.startswith("$context.") for v in line.values())


def test_the_account_role_lets_api_gateway_write_logs() -> None:
    account = RESOURCES["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    role = RESOURCES["ApiGatewayCloudWatchRole"]["Properties"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    assert account["DeletionPolicy"] == RESOURCES["ApiGatewayCloudWatchRole"]["DeletionPolicy"] == "Retain"


# ------------------------------------------------------------------ SnapStart


@pytest.mark.parametrize(("value", "expected"), [("Disabled", None), ("Enabled", {"ApplyOn": "PublishedVersions"})])
def test_the_snapstart_parameter_turns_snapstart_on_published_versions(value: str, expected: Any) -> None:
    assert PARAMETERS["SnapStart"]["Default"] == "Disabled"
    assert PARAMETERS["SnapStart"]["AllowedValues"] == ["Enabled", "Disabled"]
    globals_ = TPL["Globals"]["Function"]
    resolved = cfn.Resolver(TPL, parameters={"SnapStart": value}).resolve({"SnapStart": globals_["SnapStart"]})
    assert resolved.get("SnapStart") == expected
    assert globals_["AutoPublishAlias"] == "live"
    assert not [fn for fn, props in FUNCTIONS.items() if "SnapStart" in props or "AutoPublishAlias" in props]


def _parameters_read(node: Any, conditions: dict[str, Any]) -> set[str]:
    """Template parameters a value depends on: refs, ${...} in Subs, the conditions of Ifs."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node and node["Ref"] in PARAMETERS:
            found.add(node["Ref"])
        if isinstance(node.get("Fn::Sub"), str):
            found |= {n for n in re.findall(r"\$\{(\w+)\}", node["Fn::Sub"]) if n in PARAMETERS}
        if "Fn::If" in node:
            found |= _parameters_read(conditions[node["Fn::If"][0]], conditions)
        for value in node.values():
            found |= _parameters_read(value, conditions)
    elif isinstance(node, list):
        for value in node:
            found |= _parameters_read(value, conditions)
    return found


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_any_change_to_a_function_publishes_the_version_its_alias_serves(fn: str) -> None:
    """AutoPublishAlias publishes a version only when SAM's hash of the function changes: every
    literal property counts (AutoPublishAliasAllProperties), a new layer counts (the layer's
    PublishLambdaVersion), and a parameter counts through VersionDescription, which names every
    parameter the function reads (a new description replaces the version)."""
    props = FUNCTIONS[fn]
    assert props.get("AutoPublishAliasAllProperties") is True, f"{fn}: AutoPublishAliasAllProperties: true"
    assert "VersionDescription" in props, f"{fn}: VersionDescription: *version_inputs"
    merged = {**TPL["Globals"]["Function"], **props}
    merged.pop("VersionDescription")
    read = _parameters_read(merged, TPL["Conditions"])
    assert "SnapStart" in read
    described = set(re.findall(r"\$\{(\w+)\}", props["VersionDescription"]["Fn::Sub"]))
    assert read <= described, f"{fn}: VersionDescription lacks {sorted(read - described)}"
    for layer in merged["Layers"]:
        assert RESOURCES[layer["Ref"]]["Properties"]["PublishLambdaVersion"] is True


def test_the_authorizers_are_invoked_through_their_alias() -> None:
    for api, props in APIS.items():
        for name, authorizer in props["Auth"]["Authorizers"].items():
            assert authorizer["FunctionArn"] == {"Ref": f"{cfn.apis(TPL)[api].authorizers[name].function}.Alias"}
