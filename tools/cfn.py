"""Helpers over the SAM template: load it, create its storage, and describe its functions and APIs.

Used by the local stack and by the test suite, so that both follow `template.yaml` instead of
repeating it. Local values: region us-east-1, account 123456789012, every physical resource
named after its logical id (a FIFO queue gets the `.fifo` suffix it requires).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "segments-local"
REPO_ROOT = Path(__file__).resolve().parents[1]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_API = "AWS::Serverless::Api"
IMPLICIT_API = "ServerlessRestApi"  # SAM's API for Api events without RestApiId

# ---------------------------------------------------------------- loading


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags into their long form."""


def _intrinsic(long_name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {long_name: value}

    return construct


_TemplateLoader.add_constructor("!Ref", _intrinsic("Ref"))
_TemplateLoader.add_constructor("!Condition", _intrinsic("Condition"))
for _name in (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
    "Join", "Not", "Or", "Select", "Split", "Sub",
):  # fmt: skip
    _TemplateLoader.add_constructor(f"!{_name}", _intrinsic(f"Fn::{_name}"))


def load_template(path: str | Path = "template.yaml") -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML template (relative paths fall back to the repo root)."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = REPO_ROOT / p
    with p.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_TemplateLoader)


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every resource of one type, in template order."""
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == resource_type
    }


# ---------------------------------------------------------------- intrinsic functions

_NO_VALUE = object()  # AWS::NoValue: the property disappears


def physical_name(template: dict[str, Any], logical_id: str) -> str:
    resource = (template.get("Resources") or {}).get(logical_id, {})
    if resource.get("Type") == "AWS::SQS::Queue" and _truthy((resource.get("Properties") or {}).get("FifoQueue")):
        return f"{logical_id}.fifo"
    return logical_id


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _arn(service: str, resource: str, sep: str = ":") -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}{sep}{resource}"


@dataclass
class Resolver:
    """Resolves intrinsic functions with local values.

    `resources` maps a logical id to its Ref value (a table's or bus's name, a queue's URL);
    `parameters` overrides the template's parameter defaults.
    """

    template: dict[str, Any]
    resources: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = (self.resolve(item) for item in node)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            key, arg = next(iter(node.items()))
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = ((key, self.resolve(value)) for key, value in node.items())
        return {key: value for key, value in resolved if value is not _NO_VALUE}

    def parameter(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        spec = (self.template.get("Parameters") or {})[name]
        value = spec.get("Default")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": _arn("cloudformation", f"stack/{STACK_NAME}/local"),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in (self.template.get("Parameters") or {}):
            return self.parameter(name)
        return self.resources.get(name, physical_name(self.template, name))

    def name_of(self, logical_id: str) -> str:
        """Physical name (for a queue, the last part of its URL)."""
        value = str(self.resources.get(logical_id, physical_name(self.template, logical_id)))
        return value.rstrip("/").rsplit("/", 1)[-1]

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = ((self.template.get("Resources") or {}).get(logical_id) or {}).get("Type", "")
        name = self.name_of(logical_id)
        if attribute in ("Name", "QueueName", "TableName"):
            return name
        if attribute == "QueueUrl":
            return str(self.ref(logical_id))
        if attribute == "StreamArn":
            return _arn("dynamodb", f"table/{name}/stream/1970-01-01T00:00:00.000")
        if attribute == "Arn":
            by_type = {
                "AWS::DynamoDB::Table": _arn("dynamodb", f"table/{name}"),
                "AWS::SQS::Queue": _arn("sqs", name),
                "AWS::SNS::Topic": _arn("sns", name),
                "AWS::Events::EventBus": _arn("events", f"event-bus/{name}"),
                "AWS::Events::Rule": _arn("events", f"rule/{name}"),
                SERVERLESS_FUNCTION: _arn("lambda", f"function:{name}"),
                "AWS::Lambda::Function": _arn("lambda", f"function:{name}"),
                "AWS::IAM::Role": _arn("iam", f"role/{name}").replace(f":{REGION}:", "::"),
            }
            service = resource_type.split("::")[1].lower() if "::" in resource_type else "local"
            return by_type.get(resource_type, _arn(service, name))
        return f"{name}.{attribute}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve((self.template.get("Conditions") or {})[name]))

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(self.resolve(logical_id), self.resolve(attribute))
        if name == "Sub":
            return self._sub(arg)
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(condition) else when_false)
        args = self.resolve(arg)
        if name == "Join":
            delimiter, values = args
            return delimiter.join(str(value) for value in values)
        if name == "Select":
            index, values = args
            return values[int(index)]
        if name == "Split":
            delimiter, value = args
            return str(value).split(delimiter)
        if name == "Equals":
            return str(args[0]) == str(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "FindInMap":
            mapping, top, second = args
            return self.template["Mappings"][mapping][top][second]
        if name == "Base64":
            return base64.b64encode(str(args).encode()).decode()
        if name == "ImportValue":
            return str(args)
        if name == "GetAZs":
            return [f"{REGION}{zone}" for zone in "abc"]
        if name == "Cidr":
            block, count, bits = args
            network = ipaddress.ip_network(block, strict=False)
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
            return [str(subnet) for _, subnet in zip(range(int(count)), subnets, strict=False)]
        raise ValueError(f"unsupported intrinsic function Fn::{name}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]*)\}", replace, text)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


# ---------------------------------------------------------------- storage


def table_specs(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> kwargs for boto3 `create_table` of every AWS::DynamoDB::Table."""
    resolver = Resolver(template, parameters=parameters or {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, raw in resources_of(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(raw)
        spec: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                spec[key] = [
                    {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
                    for index in props[key]
                ]
        if props.get("StreamSpecification"):
            view_type = props["StreamSpecification"]["StreamViewType"]
            spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        specs[logical_id] = spec
    return specs


def create_tables(dynamodb_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every table of the template; returns logical id -> table name."""
    names: dict[str, str] = {}
    for logical_id, spec in table_specs(template).items():
        dynamodb_client.create_table(**spec)
        ttl = resources_of(template, "AWS::DynamoDB::Table")[logical_id].get("TimeToLiveSpecification")
        if ttl and _truthy(ttl.get("Enabled")):
            dynamodb_client.update_time_to_live(
                TableName=spec["TableName"],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        names[logical_id] = spec["TableName"]
    return names


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
    "FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize",
    "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy", "RedrivePolicy",
    "SqsManagedSseEnabled", "VisibilityTimeout",
)  # fmt: skip


def queue_specs(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> kwargs for boto3 `create_queue` of every AWS::SQS::Queue."""
    resolver = Resolver(template, parameters=parameters or {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, raw in resources_of(template, "AWS::SQS::Queue").items():
        props = resolver.resolve(raw)
        attributes = {}
        for key in _QUEUE_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else _env_value(value)
        specs[logical_id] = {"QueueName": physical_name(template, logical_id), "Attributes": attributes}
    return specs


def create_queues(sqs_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every queue (dead-letter queues first); returns logical id -> queue URL (its Ref)."""
    specs = queue_specs(template)
    arn_to_id = {Resolver(template).get_att(logical_id, "Arn"): logical_id for logical_id in specs}

    def dead_letter_id(logical_id: str) -> str | None:
        policy = specs[logical_id]["Attributes"].get("RedrivePolicy")
        return arn_to_id.get(json.loads(policy).get("deadLetterTargetArn")) if policy else None

    urls: dict[str, str] = {}
    pending = list(specs)
    while pending:
        ready = [q for q in pending if dead_letter_id(q) in (None, q, *urls)]
        if not ready:
            raise ValueError(f"circular RedrivePolicy between queues {pending}")
        for logical_id in ready:
            urls[logical_id] = sqs_client.create_queue(**specs[logical_id])["QueueUrl"]
            pending.remove(logical_id)
    return urls


def create_buses(
    events_client: Any, template: dict[str, Any], resources: dict[str, str] | None = None
) -> dict[str, str]:
    """Create every AWS::Events::EventBus and the AWS::Events::Rule (with targets) on them.

    Returns logical id -> bus name. `resources` (e.g. the queue URLs) resolves rule targets.
    """
    names: dict[str, str] = {}
    for logical_id in resources_of(template, "AWS::Events::EventBus"):
        events_client.create_event_bus(Name=logical_id)
        names[logical_id] = logical_id
    resolver = Resolver(template, resources={**(resources or {}), **names})
    for logical_id, raw in resources_of(template, "AWS::Events::Rule").items():
        props = resolver.resolve(raw)
        bus = str(props.get("EventBusName", "default")).rsplit("/", 1)[-1]
        rule: dict[str, Any] = {"Name": logical_id, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        events_client.put_rule(**rule)
        targets = [
            {k: v for k, v in target.items() if k in ("Id", "Arn", "Input", "InputPath", "SqsParameters")}
            for target in props.get("Targets") or []
        ]
        if targets:
            events_client.put_targets(Rule=logical_id, EventBusName=bus, Targets=targets)
    return names


# ---------------------------------------------------------------- functions


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_uri: str  # directory, relative to the template
    handler: str  # "module.attr"
    memory_size: int
    timeout: int
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions, when a number


def function(template: dict[str, Any], logical_id: str) -> Function:
    """A function's code location and limits, Globals.Function merged in."""
    defaults = (template.get("Globals") or {}).get("Function") or {}
    props = {**defaults, **template["Resources"][logical_id].get("Properties", {})}
    return Function(
        logical_id=logical_id,
        code_uri=str(props.get("CodeUri", ".")),
        handler=str(props.get("Handler", "")),
        memory_size=int(props.get("MemorySize", 128)),
        timeout=int(props.get("Timeout", 3)),
        reserved_concurrency=_int_or_none(props.get("ReservedConcurrentExecutions")),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def function_env(
    template: dict[str, Any],
    logical_id: str,
    resources: dict[str, str],
    parameters: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment of a function: Globals' variables, then its own, resolved with local values."""
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    own_env = template["Resources"][logical_id].get("Properties", {}).get("Environment") or {}
    variables = {**(globals_env.get("Variables") or {}), **(own_env.get("Variables") or {})}
    resolved = Resolver(template, resources, parameters or {}).resolve(variables)
    return {key: _env_value(value) for key, value in resolved.items()}


def layer_dirs(template: dict[str, Any]) -> list[str]:
    """ContentUri of every AWS::Serverless::LayerVersion (relative to the template)."""
    return [
        str(props["ContentUri"])
        for props in resources_of(template, "AWS::Serverless::LayerVersion").values()
        if isinstance(props.get("ContentUri"), str)
    ]


def _logical_id_of(value: Any) -> str | None:
    """The logical id behind a Ref / GetAtt / ARN-ish string."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    if isinstance(value, str):
        return re.split(r"[:/]", value)[-1]
    return None


# ---------------------------------------------------------------- APIs


@dataclass(frozen=True)
class Route:
    api: str  # logical id of the AWS::Serverless::Api
    path: str
    method: str  # upper case; ANY matches every method
    function: str  # logical id
    code_uri: str
    handler: str
    authorizer: str | None  # effective authorizer name (None: open)
    event: str = ""  # name of the Api event in the function


@dataclass(frozen=True)
class Authorizer:
    name: str
    function: str  # logical id
    payload_type: str  # REQUEST or TOKEN
    headers: tuple[str, ...]
    query_strings: tuple[str, ...]
    reauthorize_every: int  # seconds the result is cached (0: never)


@dataclass(frozen=True)
class GatewayResponse:
    status_code: str | None
    templates: dict[str, str]
    headers: dict[str, str]  # static header values, quotes removed


@dataclass(frozen=True)
class Api:
    logical_id: str
    stage_name: str
    authorizers: dict[str, Authorizer]
    default_authorizer: str | None
    gateway_responses: dict[str, GatewayResponse]


def apis(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Api]:
    """Every AWS::Serverless::Api (plus SAM's implicit one when an Api event uses it)."""
    resolver = Resolver(template, parameters=parameters or {})
    global_props = (template.get("Globals") or {}).get("Api") or {}
    declared = dict(resources_of(template, SERVERLESS_API))
    if any(route_api == IMPLICIT_API for route_api, _, _ in _api_events(template)):
        declared.setdefault(IMPLICIT_API, {"StageName": "Prod"})
    result: dict[str, Api] = {}
    for logical_id, own in declared.items():
        props = {**global_props, **own}
        auth = props.get("Auth") or {}
        authorizers = {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            payload_type = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
            identity = spec.get("Identity") or {}
            headers = identity.get("Headers") or []
            if payload_type == "TOKEN" and not headers:
                headers = [identity.get("Header", "Authorization")]
            ttl = resolver.resolve(identity.get("ReauthorizeEvery", 300))
            authorizers[name] = Authorizer(
                name=name,
                function=_logical_id_of(spec.get("FunctionArn")) or "",
                payload_type=payload_type,
                headers=tuple(headers),
                query_strings=tuple(identity.get("QueryStrings") or []),
                reauthorize_every=int(ttl),
            )
        responses = {}
        for response_type, spec in (props.get("GatewayResponses") or {}).items():
            spec = resolver.resolve(spec)
            headers = ((spec.get("ResponseParameters") or {}).get("Headers")) or {}
            responses[response_type] = GatewayResponse(
                status_code=str(spec["StatusCode"]) if spec.get("StatusCode") is not None else None,
                templates=dict(spec.get("ResponseTemplates") or {}),
                headers={k: str(v).strip("'") for k, v in headers.items()},
            )
        default = auth.get("DefaultAuthorizer")
        result[logical_id] = Api(
            logical_id=logical_id,
            stage_name=str(resolver.resolve(props.get("StageName", "Prod"))),
            authorizers=authorizers,
            default_authorizer=None if default in (None, "NONE", "AWS_IAM") else str(default),
            gateway_responses=responses,
        )
    return result


def _api_events(template: dict[str, Any]):
    """(api logical id, function logical id, event name + properties) of every Api event."""
    for function_id, props in resources_of(template, SERVERLESS_FUNCTION).items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == "Api":
                event_props = event.get("Properties") or {}
                api = _logical_id_of(event_props.get("RestApiId")) or IMPLICIT_API
                yield api, function_id, (event_name, event_props)


def api_routes(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[Route]:
    """Every `Type: Api` event of every AWS::Serverless::Function, with its effective authorizer."""
    api_specs = apis(template, parameters)
    routes = []
    for api, function_id, (event_name, props) in _api_events(template):
        fn = function(template, function_id)
        auth = (props.get("Auth") or {}).get("Authorizer")
        if auth is None:
            authorizer = api_specs[api].default_authorizer
        else:
            authorizer = None if auth in ("NONE", "AWS_IAM") else str(auth)
        routes.append(
            Route(
                api=api,
                path=str(props["Path"]),
                method=str(props["Method"]).upper(),
                function=function_id,
                code_uri=fn.code_uri,
                handler=fn.handler,
                authorizer=authorizer,
                event=event_name,
            )
        )
    return routes


# ---------------------------------------------------------------- event sources (SQS, DynamoDB streams)


@dataclass(frozen=True)
class SqsSource:
    function: str  # logical id
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool
    event: str = ""
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds
    filters: tuple[dict[str, Any], ...] = ()  # FilterCriteria patterns, parsed (any one matches)


@dataclass(frozen=True)
class StreamSource:
    """A `Type: DynamoDB` event: Lambda's event source mapping on a table's stream."""

    function: str  # logical id
    table: str  # logical id of the AWS::DynamoDB::Table whose stream feeds the function
    event: str
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int = 100
    batching_window: float = 0.0
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires (Lambda's default)
    max_record_age: int = -1  # seconds; -1: no limit
    report_batch_item_failures: bool = False
    filters: tuple[dict[str, Any], ...] = ()
    on_failure: str | None = None  # logical id of the on-failure destination (an SQS queue or SNS topic)
    enabled: bool = True


def _function_events(template: dict[str, Any], event_type: str):
    """(function logical id, event name, event properties) of every event of one type."""
    for function_id, props in resources_of(template, SERVERLESS_FUNCTION).items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == event_type:
                yield function_id, event_name, event.get("Properties") or {}


def _filters(resolver: Resolver, event_props: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """FilterCriteria.Filters[].Pattern (JSON strings, or maps in a template) as parsed patterns."""
    filters = (resolver.resolve(event_props.get("FilterCriteria")) or {}).get("Filters") or []
    patterns = []
    for entry in filters:
        pattern = entry.get("Pattern")
        patterns.append(json.loads(pattern) if isinstance(pattern, str) else dict(pattern or {}))
    return tuple(patterns)


def sqs_sources(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[SqsSource]:
    """Every `Type: SQS` event of every AWS::Serverless::Function."""
    resolver = Resolver(template, parameters=parameters or {})
    sources = []
    for function_id, event_name, event_props in _function_events(template, "SQS"):
        queue = _logical_id_of(event_props.get("Queue"))
        sources.append(
            SqsSource(
                function=function_id,
                queue=str(queue).removesuffix(".fifo"),
                batch_size=int(resolver.resolve(event_props.get("BatchSize", 10))),
                report_batch_item_failures="ReportBatchItemFailures"
                in (event_props.get("FunctionResponseTypes") or []),
                enabled=_truthy(resolver.resolve(event_props.get("Enabled", True))),
                event=event_name,
                batching_window=float(resolver.resolve(event_props.get("MaximumBatchingWindowInSeconds", 0))),
                filters=_filters(resolver, event_props),
            )
        )
    return sources


def _stream_table(value: Any) -> str | None:
    """The table behind a `Stream`: `!GetAtt Table.StreamArn`, or a literal stream ARN."""
    if isinstance(value, str) and ":table/" in value:
        return value.split(":table/", 1)[1].split("/", 1)[0]
    return _logical_id_of(value)


def stream_sources(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[StreamSource]:
    """Every `Type: DynamoDB` event of every AWS::Serverless::Function."""
    resolver = Resolver(template, parameters=parameters or {})
    sources = []
    for function_id, event_name, raw in _function_events(template, "DynamoDB"):
        props = {key: value for key, value in raw.items() if key not in ("Stream", "DestinationConfig")}
        props = resolver.resolve(props)
        on_failure = ((raw.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        sources.append(
            StreamSource(
                function=function_id,
                table=str(_stream_table(raw.get("Stream"))),
                event=event_name,
                starting_position=str(props.get("StartingPosition", "LATEST")).upper(),
                batch_size=int(props.get("BatchSize", 100)),
                batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                bisect_on_error=_truthy(props.get("BisectBatchOnFunctionError", False)),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                filters=_filters(resolver, raw),
                on_failure=_logical_id_of(on_failure) if on_failure else None,
                enabled=_truthy(props.get("Enabled", True)),
            )
        )
    return sources
