"""Alarms and the operations dashboard of template.yaml, generated from the template's own resources.

    python -m tools.monitoring            # rewrite the generated block of template.yaml
    python -m tools.monitoring --check    # exit 1 when the block is not what the resources call for

The block sits at the end of `Resources`, between BEGIN and END. What it holds follows from the
rest of the template (read without the block):

- every AWS::Serverless::Function: errors, throttles, duration p99 (80 % of its timeout);
- every function reading a DynamoDB or Kinesis stream: the iterator age;
- every AWS::Serverless::Api: the 5xx rate and a 4xx spike (share of requests, over a floor);
- every DynamoDB table: throttled requests and system errors (all operations, Metrics Insights);
- every dead-letter queue (a queue named as a redrive target, an on-failure destination, a
  function's or a rule target's dead-letter queue): its depth, unless an alarm outside the block
  already watches it (those sit beside their queues with their own descriptions);
- every metric the core emits whose name says work failed (`...Failed`, `...Failures`,
  `...NotPublished`: today events not put on the bus; failed webhook deliveries or exports as
  soon as the code counts them under such a name). `...Dropped` is not one: the rebuild and bulk
  delete consumers count there the messages they drop on purpose (stale, duplicate, superseded);
- one dashboard with all of these, plus every metric the core emits (`add_metric(name="...")`
  under layers/core/segments, namespace and service of segments.observability).

Every alarm notifies the SNS topic of the `AlarmTopicArn` parameter (condition `HasAlarmTopic`):
none when it is empty. `missing_coverage(template)` says what a template lacks, whoever wrote it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.cfn import SERVERLESS_API, SERVERLESS_FUNCTION, load_template, resources_of

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
CORE = ROOT / "layers" / "core" / "segments"

RULE = "  # " + "-" * 64
BEGIN = RULE + " alarms and dashboard (generated)"
END = RULE + " end of the generated alarms and dashboard"
NOTE = (
    "  # Written by `make monitoring` (python -m tools.monitoring) from the resources above: change the\n"
    "  # resources or tools/monitoring.py, never this block (tests/test_monitoring.py checks it is current)."
)

ALARM_CONDITION = "HasAlarmTopic"
TOPIC_PARAMETER = "AlarmTopicArn"
ACTIONS = f"!If [{ALARM_CONDITION}, [!Ref {TOPIC_PARAMETER}], []]"
DASHBOARD = "OperationsDashboard"
STREAM_EVENTS = {"DynamoDB", "Kinesis"}
DLQ_KEYS = {"deadLetterTargetArn", "OnFailure", "DeadLetterQueue", "DeadLetterConfig"}
QUEUE = "AWS::SQS::Queue"
TABLE = "AWS::DynamoDB::Table"
ALARM = "AWS::CloudWatch::Alarm"

# Thresholds (docs/decisions.md, Operations).
DURATION_SHARE = 0.8  # p99 duration alarm: this share of the function's timeout
ITERATOR_AGE_MS = 300_000  # a stream consumer 5 minutes behind, for 5 minutes
SERVER_ERROR_PERCENT, SERVER_ERROR_FLOOR = 2, 20  # 5xx: 2 % of at least 20 requests, twice in a row
CLIENT_ERROR_PERCENT, CLIENT_ERROR_FLOOR = 25, 50  # 4xx: a quarter of at least 50 requests, twice
FAILURE_METRIC = re.compile(r"(Failed|Failures|NotPublished)$")  # any in 5 minutes


# ------------------------------------------------------------------ what the template holds


def split(text: str) -> tuple[str, str, str]:
    """(before, block, after): the generated block with its markers (empty when there is none)."""
    if BEGIN not in text:
        before, outputs = text.split("\nOutputs:", 1)
        return before.rstrip("\n") + "\n\n", "", "Outputs:" + outputs
    before, rest = text.split(BEGIN, 1)
    block, after = rest.split(END, 1)
    return before, BEGIN + block + END, after.lstrip("\n")


def hand_written(text: str) -> dict[str, Any]:
    """The template without the generated block: what the block is generated from."""
    before, _, after = split(text)
    return yaml.load(before + after, Loader=_loader())  # nosec B506  # tools.cfn's SafeLoader subclass


def _loader() -> Any:
    from tools.cfn.template import _TemplateLoader

    return _TemplateLoader


def _function_props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    defaults = (template.get("Globals") or {}).get("Function") or {}
    return {**defaults, **(template["Resources"][logical_id].get("Properties") or {})}


def _arn_targets(node: Any) -> Iterator[str]:
    """Logical ids named by `!GetAtt X.Arn` anywhere under `node`."""
    if isinstance(node, dict):
        target = node.get("Fn::GetAtt")
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            yield str(target[0])
        for value in node.values():
            yield from _arn_targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _arn_targets(value)


def _under_dlq_keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _arn_targets(value) if key in DLQ_KEYS else _under_dlq_keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _under_dlq_keys(value)


def dead_letter_queues(template: dict[str, Any]) -> list[str]:
    """Queues that hold what failed: redrive targets, on-failure destinations, dead-letter queues of
    functions and rule targets, and any queue whose name says it is one (…DLQ, …DeadLetterQueue)."""
    queues = resources_of(template, QUEUE)
    named = {q for q in _under_dlq_keys(template.get("Resources") or {}) if q in queues}
    named |= {q for q in queues if q.endswith(("DLQ", "DeadLetterQueue"))}
    return sorted(named)


def stream_consumers(template: dict[str, Any]) -> list[str]:
    return sorted(
        fn
        for fn, props in resources_of(template, SERVERLESS_FUNCTION).items()
        if any(e.get("Type") in STREAM_EVENTS for e in (props.get("Events") or {}).values())
    )


def _watched_queues(template: dict[str, Any]) -> set[str]:
    """Queues whose depth an alarm already watches."""
    watched = set()
    for props in resources_of(template, ALARM).values():
        if props.get("MetricName") != "ApproximateNumberOfMessagesVisible":
            continue
        for dimension in props.get("Dimensions") or []:
            value = dimension.get("Value")
            if dimension.get("Name") == "QueueName" and isinstance(value, dict) and "Fn::GetAtt" in value:
                watched.add(str(value["Fn::GetAtt"][0]))
    return watched


def failure_metrics() -> list[tuple[str, str]]:
    """(module, metric) of the emitted metrics that count failed work."""
    return [(module, n) for module, names in emitted_metrics().items() for n in names if FAILURE_METRIC.search(n)]


def emitted_metrics() -> dict[str, list[str]]:
    """The metrics the core emits by a fixed name, by module (`usecases/members.py` -> `members`)."""
    found: dict[str, list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        names = re.findall(r"add_metric\(\s*name=\"(\w+)\"", path.read_text(encoding="utf-8"))
        for name in dict.fromkeys(names):
            found.setdefault(path.stem, []).append(name)
    return found


# ------------------------------------------------------------------ YAML text


def _short(value: Any) -> str:
    """A template value in the short form this file writes (Ref, Sub, GetAtt, scalars)."""
    if isinstance(value, dict) and "Ref" in value:
        return f"!Ref {value['Ref']}"
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return f"!Sub {json.dumps(value['Fn::Sub'])}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "!GetAtt " + ".".join(value["Fn::GetAtt"])
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _in_sub(value: Any) -> str:
    """The same value inside a !Sub string."""
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return str(value)


@dataclass(frozen=True)
class Alarm:
    logical_id: str
    description: str
    body: str  # the metric part of Properties, indented 6 spaces
    evaluation: str  # EvaluationPeriods, DatapointsToAlarm, Threshold, ComparisonOperator lines

    def render(self) -> str:
        return (
            f"  {self.logical_id}:\n"
            f"    Type: {ALARM}\n"
            "    Properties:\n"
            f"      AlarmDescription: {json.dumps(self.description)}\n"
            f"{self.body}{self.evaluation}"
            "      TreatMissingData: notBreaching\n"
            f"      AlarmActions: {ACTIONS}\n"
            f"      OKActions: {ACTIONS}\n"
        )


def _metric(namespace: str, name: str, dimensions: list[tuple[str, str]], stat: str, period: int) -> str:
    dims = ", ".join(f"{{ Name: {n}, Value: {v} }}" for n, v in dimensions)
    stat_line = f"ExtendedStatistic: {stat}" if stat.startswith("p") else f"Statistic: {stat}"
    return (
        f"      Namespace: {namespace}\n      MetricName: {name}\n      Dimensions: [{dims}]\n"
        f"      {stat_line}\n      Period: {period}\n"
    )


def _evaluation(periods: int, threshold: float | int, datapoints: int | None = None) -> str:
    lines = f"      EvaluationPeriods: {periods}\n"
    if datapoints is not None:
        lines += f"      DatapointsToAlarm: {datapoints}\n"
    return lines + f"      Threshold: {threshold}\n      ComparisonOperator: GreaterThanOrEqualToThreshold\n"


def _function_alarms(template: dict[str, Any], fn: str) -> list[Alarm]:
    timeout_ms = int(_function_props(template, fn).get("Timeout", 3)) * 1000
    dims = [("FunctionName", f"!Ref {fn}")]
    return [
        Alarm(
            f"{fn}ErrorsAlarm",
            f"{fn} failed (unhandled error or timeout) in the last 5 minutes.",
            _metric("AWS/Lambda", "Errors", dims, "Sum", 300),
            _evaluation(1, 1),
        ),
        Alarm(
            f"{fn}ThrottlesAlarm",
            f"{fn} was throttled (no concurrency left) in the last 5 minutes.",
            _metric("AWS/Lambda", "Throttles", dims, "Sum", 300),
            _evaluation(1, 1),
        ),
        Alarm(
            f"{fn}DurationAlarm",
            f"{fn}'s p99 duration stayed at {int(DURATION_SHARE * 100)} % of its timeout or more for 15 minutes.",
            _metric("AWS/Lambda", "Duration", dims, "p99", 300),
            _evaluation(3, int(DURATION_SHARE * timeout_ms), 3),
        ),
    ]


def _iterator_age_alarm(fn: str) -> Alarm:
    return Alarm(
        f"{fn}IteratorAgeAlarm",
        f"{fn} has been more than {ITERATOR_AGE_MS // 60_000} minutes behind its stream for 5 minutes.",
        _metric("AWS/Lambda", "IteratorAge", [("FunctionName", f"!Ref {fn}")], "Maximum", 60),
        _evaluation(5, ITERATOR_AGE_MS, 5),
    )


def _api_dimensions(props: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("ApiName", props["Name"]), ("Stage", props.get("StageName", "Prod"))]


def _rate_alarm(api: str, props: dict[str, Any], kind: str, percent: int, floor: int) -> Alarm:
    metric_name, label = ("5XXError", "ServerErrorRate") if kind == "5xx" else ("4XXError", "ClientErrorSpike")
    dims = ", ".join(f"{{ Name: {n}, Value: {_short(v)} }}" for n, v in _api_dimensions(props))

    def stat(query_id: str, name: str) -> str:
        return (
            f"        - Id: {query_id}\n"
            "          MetricStat:\n"
            f"            Metric: {{ Namespace: AWS/ApiGateway, MetricName: {name}, Dimensions: [{dims}] }}\n"
            "            Period: 300\n"
            "            Stat: Sum\n"
            "          ReturnData: false\n"
        )

    body = (
        "      Metrics:\n"
        "        - Id: rate\n"
        f'          Expression: "IF(requests >= {floor}, 100 * errors / requests, 0)"\n'
        f"          Label: {kind} responses, % of requests\n"
        "          ReturnData: true\n" + stat("errors", metric_name) + stat("requests", "Count")
    )
    what = "server errors (5xx)" if kind == "5xx" else "client errors (4xx: bad keys, throttling, bad input)"
    return Alarm(
        f"{api}{label}Alarm",
        f"{api}: {what} were {percent} % or more of at least {floor} requests, two 5-minute periods running.",
        body,
        _evaluation(2, percent, 2),
    )


def _insights(metric: str, table: str) -> str:
    schema = 'SCHEMA(\\"AWS/DynamoDB\\", Operation, TableName)'
    return f"SELECT SUM({metric}) FROM {schema} WHERE TableName = '${{{table}}}'"  # nosec B608  # a metrics query


def _table_alarms(table: str) -> list[Alarm]:
    def body(metric: str) -> str:
        return (
            "      Metrics:\n"
            "        - Id: total\n"
            f'          Expression: !Sub "{_insights(metric, table)}"\n'
            "          Period: 300\n"
            "          ReturnData: true\n"
        )

    return [
        Alarm(
            f"{table}ThrottlesAlarm",
            f"{table}: requests were throttled (a hot partition or an account limit) two 5-minute periods running.",
            body("ThrottledRequests"),
            _evaluation(2, 1, 2),
        ),
        Alarm(
            f"{table}SystemErrorsAlarm",
            f"{table}: DynamoDB answered requests with an internal error (HTTP 500) in the last 5 minutes.",
            body("SystemErrors"),
            _evaluation(1, 1),
        ),
    ]


def _dlq_alarm(queue: str) -> Alarm:
    return Alarm(
        f"{queue}Alarm",
        f"Messages wait in the dead-letter queue {queue}: their work failed every retry.",
        _metric(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [("QueueName", f"!GetAtt {queue}.QueueName")],
            "Maximum",
            60,
        ),
        _evaluation(1, 1),
    )


def _failure_alarm(module: str, metric: str) -> Alarm:
    from segments.observability import NAMESPACE, SERVICE

    return Alarm(
        f"{metric}Alarm",
        f"The service counted {metric} (segments, module {module}) in the last 5 minutes.",
        _metric(NAMESPACE, metric, [("service", SERVICE)], "Sum", 300),
        _evaluation(1, 1),
    )


def alarms(template: dict[str, Any]) -> list[Alarm]:
    found: list[Alarm] = []
    for fn in resources_of(template, SERVERLESS_FUNCTION):
        found += _function_alarms(template, fn)
    found += [_iterator_age_alarm(fn) for fn in stream_consumers(template)]
    for api, props in resources_of(template, SERVERLESS_API).items():
        found.append(_rate_alarm(api, props, "5xx", SERVER_ERROR_PERCENT, SERVER_ERROR_FLOOR))
        found.append(_rate_alarm(api, props, "4xx", CLIENT_ERROR_PERCENT, CLIENT_ERROR_FLOOR))
    for table in resources_of(template, TABLE):
        found += _table_alarms(table)
    watched = _watched_queues(template)
    found += [_dlq_alarm(q) for q in dead_letter_queues(template) if q not in watched]
    found += [_failure_alarm(module, metric) for module, metric in failure_metrics()]
    return found


# ------------------------------------------------------------------ the dashboard


def _widget(title: str, metrics: list[Any], *, stat: str = "Sum", period: int = 300, width: int = 12) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": width,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stat": stat,
            "period": period,
            "metrics": metrics,
        },
    }


def _per_function(functions: list[str], namespace: str, name: str) -> list[Any]:
    return [[namespace, name, "FunctionName", "${" + fn + "}", {"label": fn}] for fn in functions]


def dashboard(template: dict[str, Any], alarm_ids: list[str]) -> dict[str, Any]:
    from segments.observability import NAMESPACE, SERVICE

    functions = list(resources_of(template, SERVERLESS_FUNCTION))
    every_alarm = sorted({*alarm_ids, *resources_of(template, ALARM)})
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": "# Segments operations\nAlarms notify the SNS topic of the stack's `AlarmTopicArn` "
                "parameter. Access logs: log groups `/aws/apigateway/${AWS::StackName}-*/access`."
            },
        }
    ]
    for start in range(0, len(every_alarm), 100):  # an alarm widget shows at most 100 alarms
        names = ["${" + a + ".Arn}" for a in every_alarm[start : start + 100]]
        widgets.append({"type": "alarm", "width": 24, "height": 6, "properties": {"title": "Alarms", "alarms": names}})
    for api, props in resources_of(template, SERVERLESS_API).items():
        dims: list[str] = [x for n, v in _api_dimensions(props) for x in (n, _in_sub(v))]
        requests = [["AWS/ApiGateway", m, *dims, {"label": m}] for m in ("Count", "4XXError", "5XXError")]
        latency = [["AWS/ApiGateway", "Latency", *dims, {"stat": s, "label": s}] for s in ("p50", "p99")]
        widgets += [_widget(f"{api}: requests and errors", requests), _widget(f"{api}: latency (ms)", latency)]
    widgets += [
        _widget("Lambda errors", _per_function(functions, "AWS/Lambda", "Errors")),
        _widget("Lambda throttles", _per_function(functions, "AWS/Lambda", "Throttles")),
        _widget("Lambda duration p99 (ms)", _per_function(functions, "AWS/Lambda", "Duration"), stat="p99"),
        _widget(
            "Stream consumers: iterator age (ms)",
            _per_function(stream_consumers(template), "AWS/Lambda", "IteratorAge"),
            stat="Maximum",
            period=60,
        ),
        _widget(
            "Dead-letter queues: messages waiting",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${" + q + ".QueueName}", {"label": q}]
                for q in dead_letter_queues(template)
            ],
            stat="Maximum",
            period=60,
        ),
    ]
    for table in resources_of(template, TABLE):
        queries = [
            {"expression": _insights(m, table).replace('\\"', '"'), "label": m, "id": f"q{i}"}
            for i, m in enumerate(("ThrottledRequests", "SystemErrors"))
        ]
        widgets.append(_widget(f"{table}: throttled requests and system errors", queries))
    for module, names in emitted_metrics().items():
        metrics = [[NAMESPACE, name, "service", SERVICE, {"label": name}] for name in names]
        widgets.append(_widget(f"{NAMESPACE} metrics: {module}", metrics))
    search = f"SEARCH('{{{NAMESPACE},service}} Errors', 'Sum', 300)"
    widgets.append(_widget("Error responses by status (Errors<status>)", [{"expression": search, "id": "errors"}]))
    return {"widgets": widgets}


def _format(body: dict[str, Any]) -> str:
    """JSON with one widget, and one metric line, per line (valid JSON, readable in a diff)."""
    widgets = []
    for widget in body["widgets"]:
        props = dict(widget["properties"])
        metrics = props.pop("metrics", None)
        head = json.dumps({**widget, "properties": props})
        if metrics is not None:
            lines = ",\n".join("      " + json.dumps(m) for m in metrics)
            head = head[:-2] + ', "metrics": [\n' + lines + "\n    ]}}"
        widgets.append("    " + head)
    return '{\n  "widgets": [\n' + ",\n".join(widgets) + "\n  ]\n}"


def _dashboard_resource(body: dict[str, Any]) -> str:
    text = _format(body)
    indented = "\n".join("        " + line for line in text.splitlines())
    return (
        f"  {DASHBOARD}:\n"
        "    Type: AWS::CloudWatch::Dashboard\n"
        "    Properties:\n"
        '      DashboardName: !Sub "${AWS::StackName}-operations"\n'
        f"      DashboardBody: !Sub |\n{indented}\n"
    )


def render(text: str) -> str:
    """The whole template text with its generated block as the rest of it calls for."""
    template = hand_written(text)
    before, _, after = split(text)
    found = alarms(template)
    parts = [BEGIN, NOTE, "", *(a.render() for a in found)]
    parts.append(_dashboard_resource(dashboard(template, [a.logical_id for a in found])))
    return before + "\n".join(parts) + END + "\n\n" + after


# ------------------------------------------------------------------ coverage, whoever wrote it


def dashboard_metrics(template: dict[str, Any]) -> list[list[Any]]:
    """Every metric line of every dashboard (namespace, name, dimension pairs..., options)."""
    lines: list[list[Any]] = []
    for props in resources_of(template, "AWS::CloudWatch::Dashboard").values():
        body = props["DashboardBody"]
        text = body["Fn::Sub"] if isinstance(body, dict) else body
        for widget in json.loads(text)["widgets"]:
            lines += [m for m in widget.get("properties", {}).get("metrics", []) if isinstance(m, list)]
    return lines


def _on_dashboard(lines: list[list[Any]], *prefix: str) -> bool:
    return any(tuple(line[: len(prefix)]) == prefix for line in lines)


def _watches(alarm: dict[str, Any], namespace: str, metric: str, dimension: str, value: Any) -> bool:
    """The alarm's metric, or one of its metric math queries, is `metric` with that dimension."""
    metrics = [alarm] + [(q.get("MetricStat") or {}).get("Metric") or {} for q in alarm.get("Metrics") or []]
    return any(
        m.get("Namespace") == namespace
        and m.get("MetricName") == metric
        and {"Name": dimension, "Value": value} in (m.get("Dimensions") or [])
        for m in metrics
    )


def _queries(alarm: dict[str, Any]) -> str:
    return json.dumps([q.get("Expression") for q in alarm.get("Metrics") or []])


def missing_coverage(template: dict[str, Any]) -> list[str]:
    """What lacks an alarm or a place on the dashboard, in words (empty: all covered)."""
    alarms_ = list(resources_of(template, ALARM).values())
    lines = dashboard_metrics(template)
    missing: list[str] = []

    def alarm(what: str, namespace: str, metric: str, dimension: str, value: Any, **extra: Any) -> None:
        if not any(
            _watches(a, namespace, metric, dimension, value) and all(a.get(k) == v for k, v in extra.items())
            for a in alarms_
        ):
            missing.append(f"{what}: no {metric} alarm")

    def shown(what: str, *prefix: str) -> None:
        if not _on_dashboard(lines, *prefix):
            missing.append(f"{what}: {prefix[1]} not on the dashboard")

    for fn in resources_of(template, SERVERLESS_FUNCTION):
        ref, sub = {"Ref": fn}, "${" + fn + "}"
        alarm(fn, "AWS/Lambda", "Errors", "FunctionName", ref)
        alarm(fn, "AWS/Lambda", "Throttles", "FunctionName", ref)
        alarm(fn, "AWS/Lambda", "Duration", "FunctionName", ref, ExtendedStatistic="p99")
        for metric in ("Errors", "Throttles", "Duration"):
            shown(fn, "AWS/Lambda", metric, "FunctionName", sub)
    for fn in stream_consumers(template):
        alarm(fn, "AWS/Lambda", "IteratorAge", "FunctionName", {"Ref": fn})
        shown(fn, "AWS/Lambda", "IteratorAge", "FunctionName", "${" + fn + "}")
    for queue in dead_letter_queues(template):
        depth = "ApproximateNumberOfMessagesVisible"
        alarm(queue, "AWS/SQS", depth, "QueueName", {"Fn::GetAtt": [queue, "QueueName"]})
        shown(queue, "AWS/SQS", depth, "QueueName", "${" + queue + ".QueueName}")
    for api, props in resources_of(template, SERVERLESS_API).items():
        for metric in ("5XXError", "4XXError", "Count"):
            alarm(api, "AWS/ApiGateway", metric, "ApiName", props.get("Name"))
            shown(api, "AWS/ApiGateway", metric, "ApiName", _in_sub(props.get("Name")))
    from segments.observability import NAMESPACE, SERVICE

    for _, metric in failure_metrics():
        alarm(metric, NAMESPACE, metric, "service", SERVICE)
    for names in emitted_metrics().values():
        for metric in names:
            shown(metric, NAMESPACE, metric, "service", SERVICE)
    for table in resources_of(template, TABLE):
        for metric in ("ThrottledRequests", "SystemErrors"):
            if not any(f"SUM({metric})" in _queries(a) and "${" + table + "}" in _queries(a) for a in alarms_):
                missing.append(f"{table}: no {metric} alarm")
    expected = {"Fn::If": [ALARM_CONDITION, [{"Ref": TOPIC_PARAMETER}], []]}
    for alarm_id, props in resources_of(template, ALARM).items():
        for key in ("AlarmActions", "OKActions"):
            if props.get(key) != expected:
                missing.append(f"{alarm_id}: {key} is not the {TOPIC_PARAMETER} topic")
    return missing


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the generated block is stale")
    args = parser.parse_args(argv)
    text = TEMPLATE.read_text(encoding="utf-8")
    wanted = render(text)
    if args.check:
        if wanted != text:
            print("template.yaml: the alarms and dashboard are stale; run `make monitoring`", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(wanted, encoding="utf-8")
    gaps = missing_coverage(load_template(TEMPLATE))
    for gap in gaps:
        print(f"not covered: {gap}", file=sys.stderr)
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
