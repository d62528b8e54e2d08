"""Loading the template, and the intrinsic functions it uses (Ref, GetAtt, Sub, If, ...)."""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "segments-local"
REPO_ROOT = Path(__file__).resolve().parents[2]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_API = "AWS::Serverless::Api"
IMPLICIT_API = "ServerlessRestApi"  # SAM's API for Api events without RestApiId


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
        return yaml.load(fh, Loader=_TemplateLoader)  # nosec B506  # a SafeLoader subclass


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
    if resource.get("Type") == "AWS::S3::Bucket":
        return logical_id.lower()  # bucket names are lowercase
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
                "AWS::KMS::Key": _arn("kms", f"key/{name}"),
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
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
