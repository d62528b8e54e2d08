"""One way into a handler: every Lambda handler in functions/*/handler.py goes through
`segments.observability.observed`, and through nothing else (HTTP, SQS, stream and authorizer
alike), so each invocation gets its correlation id, Lambda context keys and metric set.

The handlers are the template's (`Handler:` of every function whose code is there); each module
is loaded from its file, as Lambda loads it, and the attribute Lambda would call is checked.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from segments.observability import observed
from tools import cfn

ROOT = Path(__file__).resolve().parents[2]
HANDLER_FILES = sorted((ROOT / "functions").glob("*/handler.py"))
OBSERVED_CODE = observed(lambda event, context: None).__code__  # the wrapper every handler must be


def template_handlers() -> dict[Path, set[str]]:
    """handler.py path -> the attributes the template's functions call in it."""
    template = cfn.load_template(ROOT / "template.yaml")
    found: dict[Path, set[str]] = {}
    for logical_id in cfn.resources_of(template, cfn.SERVERLESS_FUNCTION):
        function = cfn.function(template, logical_id)
        module, attr = function.handler.rsplit(".", 1)
        path = (ROOT / function.code_uri / (module.replace(".", "/") + ".py")).resolve()
        found.setdefault(path, set()).add(attr)
    return found


def lambda_context(function_name: str) -> SimpleNamespace:
    """What Powertools reads of Lambda's context (the local stack's runtime is not of this tier)."""
    return SimpleNamespace(
        function_name=function_name,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 28_000,
    )


def load(path: Path) -> ModuleType:
    name = f"handler_under_test_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_there_are_handlers_and_the_template_calls_each_module() -> None:
    handlers = template_handlers()
    assert len(HANDLER_FILES) >= 14
    assert [p for p in HANDLER_FILES if p.resolve() not in handlers] == []


@pytest.mark.parametrize("path", HANDLER_FILES, ids=lambda p: p.parent.name)
def test_every_template_handler_is_observed_and_nothing_else(path: Path) -> None:
    module = load(path)
    for attr in sorted(template_handlers()[path.resolve()]):
        handler: Any = getattr(module, attr)
        assert handler.__code__ is OBSERVED_CODE, f"{path.parent.name}.{attr} is not wrapped by observed"
        inner = handler.__wrapped__
        assert not hasattr(inner, "__wrapped__"), f"{path.parent.name}.{attr}: observed wraps another decorator"
        assert inner.__code__.co_filename == str(path), f"{path.parent.name}.{attr} is not the module's own function"


@pytest.mark.parametrize("path", HANDLER_FILES, ids=lambda p: p.parent.name)
def test_no_handler_module_decorates_otherwise(path: Path) -> None:
    """No other decorator on a handler module's functions (e.g. inject_lambda_context,
    log_metrics), and none of Powertools' per-handler wrappers used another way."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [ast.unparse(d) for d in node.decorator_list]
            assert names in ([], ["observed"]), f"{path.parent.name}.{node.name}: {names}"
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"inject_lambda_context", "log_metrics"}, f"{path.parent.name}: {node.attr}"


SQS_CONSUMERS = [p for p in HANDLER_FILES if "process_partial_response" in p.read_text(encoding="utf-8")]


def test_the_queue_consumers_are_found() -> None:
    assert {p.parent.name for p in SQS_CONSUMERS} >= {"signals_ingest", "bulk_delete", "rule_rebuild"}


@pytest.mark.parametrize("path", SQS_CONSUMERS, ids=lambda p: p.parent.name)
def test_every_queue_consumer_takes_its_processor_from_the_sqs_adapter(path: Path) -> None:
    """One BatchProcessor for every SQS consumer: adapters/sqs.py's, which logs each failed message."""
    from segments.adapters.sqs import LoggedFailures

    processor = load(path).processor
    assert isinstance(processor, LoggedFailures), f"{path.parent.name}: {type(processor).__name__}"
    assert "BatchProcessor(" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("api_request_id", ["c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "not-a-uuid", None])
def test_a_request_has_one_id_in_its_response_and_its_log_lines(api_request_id: str | None) -> None:
    """surfaces/http takes the request id `observed` set as the correlation id (whatever API
    Gateway's id looks like) instead of deriving a second one."""
    from helpers.logs import captured_log_lines

    module = load(ROOT / "functions" / "segment_query" / "handler.py")
    event = {
        "resource": "/v2/segments",
        "path": "/v2/segments",
        "httpMethod": "GET",
        "headers": {},
        "queryStringParameters": None,
        "requestContext": {"requestId": api_request_id, "resourcePath": "/v2/segments", "httpMethod": "GET"},
        "body": None,
        "isBase64Encoded": False,
    }
    with captured_log_lines() as lines:
        response = module.lambda_handler(event, lambda_context("SegmentQueryFunction"))
    assert response["statusCode"] == 401  # no authorizer context: refused before any AWS call
    headers = response.get("multiValueHeaders") or {}
    rid = headers["x-api-request-id"][0] if headers else response["headers"]["x-api-request-id"]
    assert json.loads(response["body"])["api_request_id"] == rid
    assert lines and {line["correlation_id"] for line in lines} == {rid}
    if api_request_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef":
        assert rid == "req_c6af9ac67b6111e69a4193e8deadbeef"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (absolute `import x.y` and `from x.y import z` forms, plus
    `from x import y` as `x.y`, so a submodule imported by name counts)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_function_and_no_core_module_imports_the_operator_cli() -> None:
    """`segments.cli` is left out of the Lambda layer (layers/core/Makefile), so code that runs in a
    function must never import it; only the CLI itself and the tests do."""
    core = ROOT / "layers" / "core" / "segments"
    in_functions = list((ROOT / "functions").rglob("*.py"))
    files = in_functions + [p for p in core.rglob("*.py") if "cli" not in p.relative_to(core).parts]
    assert len(files) > 50
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[:2] == ["segments", "cli"])
        for p in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    makefile = (ROOT / "layers" / "core" / "Makefile").read_text(encoding="utf-8")
    assert 'rm -rf "$(TARGET)/segments/cli"' in makefile
