"""The `environments` benchmark's prototype: an execution environment in a process of its own
(tools/bench/process_env.py) behaves as the runtime's in-process one: the handler's module is
loaded once (its module state persists between invocations, in another process), results come
back, a handler's exception is raised in the caller, and a handler that cannot load fails the
environment's creation. No figure is asserted (see `python -m tools.bench environments`)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tools import cfn
from tools.bench import process_env
from tools.local_stack import lambda_context

HANDLER = """
import os

CALLS = []


def handler(event, context):
    if event.get("fail"):
        raise ValueError("refused: " + event["fail"])
    CALLS.append(event["i"])
    return {"pid": os.getpid(), "calls": CALLS, "function": context.function_name, "env": os.environ.get("ENV_SEEN")}
"""


def function(root: Path, source: str) -> cfn.Function:
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(textwrap.dedent(source))
    return cfn.Function(logical_id="Fn", code_uri="src/", handler="app.handler", memory_size=128, timeout=3)


def test_an_environment_in_a_process_keeps_its_module_and_raises_the_handlers_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_env, "START_METHOD", "spawn")
    monkeypatch.setenv("ENV_SEEN", "yes")
    environment = process_env.ProcessEnvironment(function(tmp_path, HANDLER), tmp_path, 1)
    try:
        first = environment.invoke({"i": 1}, lambda_context("Fn"))
        second = environment.invoke({"i": 2}, lambda_context("Fn"))
        with pytest.raises(ValueError, match="refused: poison"):
            environment.invoke({"fail": "poison"}, lambda_context("Fn"))
        third = environment.invoke({"i": 3}, lambda_context("Fn"))
    finally:
        environment.close()
    assert first["pid"] != os.getpid() and first["pid"] == second["pid"] == third["pid"]
    assert third["calls"] == [1, 2, 3] and first["function"] == "Fn" and first["env"] == "yes"
    assert environment.invocations == 4 and not environment.process.is_alive()


def test_a_handler_that_cannot_load_fails_the_environments_creation(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        process_env.ProcessEnvironment(function(tmp_path, "x = 1 / 0\n"), tmp_path, 1)
