"""The template's functions: handler, code, environment, layers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tools.cfn.template import (
    Resolver,
    _env_value,
    resources_of,
)


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


def logical_id_of(value: Any) -> str | None:
    """The logical id behind a Ref / GetAtt / ARN-ish string."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"]).split(".", 1)[0]  # SAM's `!Ref Fn.Alias` / `!Ref Fn.Version`: the function
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    if isinstance(value, str):
        return re.split(r"[:/]", value)[-1]
    return None
