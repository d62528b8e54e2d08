"""Lambda's runtime, in-process: a pool of execution environments per function.

Lambda runs one invocation at a time in an execution environment and gives concurrent
invocations other environments, each a cold start, up to the function's concurrency. Here an
environment is a copy of the handler module loaded under a name of its own, so the module-level
state of a handler (its Powertools resolver and the route context on it) never serves two
invocations at once. An invocation takes an idle environment (the most recently used first, as
warm as can be), else creates one while the function is under its cap, else waits for one to be
returned (Lambda would throttle). Each invocation runs in a fresh `contextvars.Context`, as it
would in a process of its own.

What the copies share is the process: the `segments` package and the libraries are imported
once. Their per-invocation state is context-local (segments.observability, and Powertools'
resolver event through `isolation.isolate_resolver_state`, installed by the runtime).
"""

from __future__ import annotations

import contextvars
import importlib.util
import itertools
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tools import cfn
from tools.local_stack.isolation import isolate_resolver_state

DEFAULT_CONCURRENCY = 16  # environments per function when the template reserves none
_LOAD_LOCK = threading.Lock()  # sys.path is edited while a handler module loads


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._started + self.timeout_seconds - time.monotonic()) * 1000))


def lambda_context(function_name: str, *, memory_mb: int = 512, timeout_seconds: int = 28) -> LambdaContext:
    """A context like the one Lambda hands a handler (also used by the tests and the benchmarks)."""
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT_ID}:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=timeout_seconds,
    )


def _load(unique: str, path: Path, code_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    with _LOAD_LOCK:
        sys.path.insert(0, str(code_dir))  # sibling modules of the handler, as in Lambda
        try:
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(unique, None)
            raise
        finally:
            sys.path.remove(str(code_dir))
    return module


class Environment:
    """One execution environment: its own copy of the handler module, one invocation at a time."""

    def __init__(self, function: cfn.Function, root: Path, number: int) -> None:
        self.function = function
        self.number = number
        self.invocations = 0
        code_dir = (root / function.code_uri).resolve()
        module_name, attr = function.handler.rsplit(".", 1)
        path = code_dir / (module_name.replace(".", "/") + ".py")
        self.module_name = "local_fn_" + re.sub(r"\W", "_", f"{function.logical_id}__{module_name}__{number}")
        self.module = contextvars.Context().run(_load, self.module_name, path, code_dir)  # the cold start
        self.handler: Callable[[Any, Any], Any] = getattr(self.module, attr)

    def invoke(self, event: Any, context: Any) -> Any:
        self.invocations += 1
        return contextvars.Context().run(self.handler, event, context)


class Pool:
    """The execution environments of one function."""

    def __init__(self, function: cfn.Function, root: Path, concurrency: int) -> None:
        self.function = function
        self.root = root
        self.concurrency = max(1, concurrency)
        self._idle: list[Environment] = []
        self._all: list[Environment] = []
        self._creating = 0
        self._numbers = itertools.count(1)
        self._changed = threading.Condition()

    @property
    def size(self) -> int:
        with self._changed:
            return len(self._all)

    @property
    def busy(self) -> int:
        with self._changed:
            return len(self._all) + self._creating - len(self._idle)

    def acquire(self) -> Environment:
        with self._changed:
            while not self._idle and len(self._all) + self._creating >= self.concurrency:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._creating += 1
            number = next(self._numbers)
        try:
            environment = Environment(self.function, self.root, number)
        except BaseException:
            with self._changed:
                self._creating -= 1
                self._changed.notify()
            raise
        with self._changed:
            self._creating -= 1
            self._all.append(environment)
        return environment

    def release(self, environment: Environment) -> None:
        with self._changed:
            self._idle.append(environment)
            self._changed.notify()

    def invoke(self, event: Any, context: Any) -> Any:
        environment = self.acquire()
        try:
            return environment.invoke(event, context)
        finally:
            self.release(environment)


class Runtime:
    """The functions of a template, each with its pool of execution environments."""

    def __init__(self, template: dict[str, Any], root: Path, *, default_concurrency: int = DEFAULT_CONCURRENCY) -> None:
        isolate_resolver_state()
        self._template = template
        self._root = root
        self._default_concurrency = default_concurrency
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()

    def pool(self, logical_id: str) -> Pool:
        with self._lock:
            if logical_id not in self._pools:
                function = cfn.function(self._template, logical_id)
                concurrency = function.reserved_concurrency or self._default_concurrency
                self._pools[logical_id] = Pool(function, self._root, concurrency)
            return self._pools[logical_id]

    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        """Call as Lambda would call the handler: `handler(event, context)`, on an environment of the pool."""
        return self.pool(logical_id).invoke

    def warm(self, logical_id: str) -> None:
        """Create one environment now if there is none (a broken handler fails here)."""
        pool = self.pool(logical_id)
        if pool.size == 0:
            pool.release(pool.acquire())

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke with a fresh context; the result goes through JSON as Lambda's would (Decimal etc. fail)."""
        function = cfn.function(self._template, logical_id)
        context = lambda_context(logical_id, memory_mb=function.memory_size, timeout_seconds=function.timeout)
        return json.loads(json.dumps(self.pool(logical_id).invoke(event, context)))


Functions = Runtime  # the name the tests and tools used first
