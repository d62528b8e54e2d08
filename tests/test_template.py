"""template.yaml and samconfig.toml hold what we promise about the deployed stack.

No AWS and no SAM CLI here: the template is read by tools.cfn (CloudFormation tags kept as their
long forms) and checked for runtime, architecture, code layout, least privilege, table safety,
API throttling, gateway responses and route prefixes.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tools.cfn import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
CORE = ROOT / "layers" / "core"

HANDLER_ENV = {
    "TABLE_NAME": "SegmentsTable",
    "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REQUIRED_GATEWAY_RESPONSES = {
    "UNAUTHORIZED",
    "ACCESS_DENIED",
    "MISSING_AUTHENTICATION_TOKEN",
    "THROTTLED",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
}
ROUTE_PREFIXES = {"MinervaApi": ("/v2/", "/v1/"), "SheepApi": ("/segments/v2/",)}


# ------------------------------------------------------------------ loading

TPL = load_template(TEMPLATE)
RESOURCES: dict[str, dict[str, Any]] = TPL["Resources"]
GLOBAL_FN: dict[str, Any] = TPL.get("Globals", {}).get("Function", {})


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in RESOURCES.items() if res["Type"] == kind}


FUNCTIONS = _of_type("AWS::Serverless::Function")
TABLES = _of_type("AWS::DynamoDB::Table")
APIS = _of_type("AWS::Serverless::Api")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _fn_prop(name: str, prop: str) -> Any:
    """A function property with Globals applied (the function's own value wins)."""
    return FUNCTIONS[name]["Properties"].get(prop, GLOBAL_FN.get(prop))


def test_template_has_the_expected_resources() -> None:
    assert FUNCTIONS, "no AWS::Serverless::Function in template.yaml"
    assert TABLES, "no AWS::DynamoDB::Table in template.yaml"
    assert set(APIS) == {"MinervaApi", "SheepApi"}


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_runtime_is_python313_on_arm64(name: str) -> None:
    assert GLOBAL_FN.get("Runtime") == "python3.13"
    assert GLOBAL_FN.get("Architectures") == ["arm64"]
    assert _fn_prop(name, "Runtime") == "python3.13"
    assert _fn_prop(name, "Architectures") == ["arm64"]


def test_layer_targets_the_same_runtime_and_architecture() -> None:
    layers = _of_type("AWS::Serverless::LayerVersion")
    assert layers
    for name, layer in layers.items():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"], name
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"], name
        assert layer["Metadata"].get("BuildArchitecture") == "arm64", name
        content = ROOT / layer["Properties"]["ContentUri"]
        assert (content / "requirements.txt").is_file(), name
        if layer["Metadata"]["BuildMethod"] == "makefile":
            # the layer's own build: arm64 wheels for Python 3.13 and shipped bytecode
            makefile = (content / "Makefile").read_text()
            assert f"build-{name}:" in makefile, name
            assert "--platform manylinux2014_aarch64" in makefile and "--python-version 3.13" in makefile, name
            assert "compileall" in makefile and "unchecked-hash" in makefile, name
        else:
            assert layer["Metadata"]["BuildMethod"] == "python3.13", name


def _import_isolated(code_uri: str) -> Any:
    """functions/<dir>/handler.py under its own module name, so the handlers never collide."""
    path = ROOT / code_uri / "handler.py"
    name = "_template_check_" + re.sub(r"\W", "_", code_uri.strip("/"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_handler_exists(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    props = FUNCTIONS[name]["Properties"]
    code_uri = props["CodeUri"]
    assert isinstance(code_uri, str) and code_uri.startswith("functions/"), code_uri
    module_name, attr = props["Handler"].rsplit(".", 1)
    assert module_name == "handler", props["Handler"]
    assert (ROOT / code_uri / "handler.py").is_file(), f"{code_uri}handler.py is missing"

    for key, value in HANDLER_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(CORE))
    module = _import_isolated(code_uri)
    assert callable(getattr(module, attr, None)), f"{code_uri}handler.py has no callable {attr}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_policies_are_explicit_and_scoped(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    assert "Role" not in props, "use Policies, not a shared role"
    policies = props.get("Policies")
    assert policies, f"{name} has no explicit Policies"
    for policy in _as_list(policies):
        assert isinstance(policy, dict), f"{name}: managed policy {policy!r} is not scoped"
        statements = policy.get("Statement")
        if statements is None:  # a SAM policy template, e.g. {"SQSSendMessagePolicy": {...}}
            assert all(isinstance(v, dict) and v for v in policy.values()), f"{name}: unscoped {policy}"
            continue
        for statement in _as_list(statements):
            actions = _as_list(statement.get("Action", []))
            resources = _as_list(statement.get("Resource", []))
            assert actions, f"{name}: statement without Action"
            assert resources, f"{name}: statement without Resource"
            for action in actions:
                assert action != "*", f"{name}: Action '*'"
                assert action.lower() != "dynamodb:*", f"{name}: dynamodb:*"
            for resource in resources:
                assert resource != "*", f"{name}: Resource '*' for {actions}"


# ------------------------------------------------------------------ tables


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_is_on_demand_with_pitr_and_sse(name: str) -> None:
    props = TABLES[name]["Properties"]
    assert props.get("BillingMode") == "PAY_PER_REQUEST"
    assert props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True
    assert props.get("SSESpecification", {}).get("SSEEnabled") is True
    assert TABLES[name].get("DeletionPolicy") == "Retain"


# ------------------------------------------------------------------ APIs


@pytest.mark.parametrize("name", sorted(APIS))
def test_api_is_throttled(name: str) -> None:
    settings = APIS[name]["Properties"].get("MethodSettings") or []
    catch_all = [s for s in settings if s.get("ResourcePath") == "/*" and s.get("HttpMethod") == "*"]
    assert catch_all, f"{name} has no MethodSettings for every method and path"
    for setting in catch_all:
        assert "ThrottlingRateLimit" in setting
        assert "ThrottlingBurstLimit" in setting


@pytest.mark.parametrize("name", sorted(APIS))
def test_api_gateway_responses(name: str) -> None:
    responses = APIS[name]["Properties"].get("GatewayResponses") or {}
    missing = REQUIRED_GATEWAY_RESPONSES - set(responses)
    assert not missing, f"{name} lacks gateway responses {sorted(missing)}"
    for kind, response in responses.items():
        templates = response.get("ResponseTemplates") or {}
        assert "application/json" in templates, f"{name}.{kind} has no JSON body"


def _api_events() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for fn_name, fn in FUNCTIONS.items():
        for event_name, event in (fn["Properties"].get("Events") or {}).items():
            if event["Type"] == "Api":
                found.append((fn_name, event_name, event["Properties"]))
    return found


def test_every_api_event_names_its_api() -> None:
    events = _api_events()
    assert events
    for fn_name, event_name, props in events:
        api = props.get("RestApiId")
        assert isinstance(api, dict) and api.get("Ref") in APIS, (
            f"{fn_name}.{event_name} would land on the implicit ServerlessRestApi"
        )


@pytest.mark.parametrize(
    ("fn_name", "event_name", "props"), _api_events(), ids=[f"{fn}.{ev}" for fn, ev, _ in _api_events()]
)
def test_api_route_prefix(fn_name: str, event_name: str, props: dict[str, Any]) -> None:
    api = props["RestApiId"]["Ref"]
    path = props["Path"]
    assert path.startswith(ROUTE_PREFIXES[api]), f"{fn_name}.{event_name}: {path} on {api}"


# ------------------------------------------------------------------ samconfig.toml


def test_samconfig_has_dev_and_prod() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    for env, stack in (("default", "segments-dev"), ("prod", "segments-prod")):
        assert config[env]["validate"]["parameters"]["lint"] is True
        build = config[env]["build"]["parameters"]
        assert build["cached"] is True and build["parallel"] is True
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["stack_name"] == stack
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert deploy["confirm_changeset"] is True
        overrides = deploy["parameter_overrides"]
        declared = set(TPL["Parameters"])
        for name in re.findall(r"(\w+)=", overrides):
            assert name in declared, f"{env}: override of unknown parameter {name}"
        assert "sync" in config[env] and "local_start_api" in config[env]
