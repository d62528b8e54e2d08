"""An execution environment as a process of its own (the `environments` benchmark's prototype).

`ProcessEnvironment` has the interface of `tools.local_stack.runtime.Environment`, but the handler
module is loaded in a child process (multiprocessing, `spawn` or `forkserver`) that serves one
invocation at a time over a pipe, as Lambda runs one environment per process. The benchmark
swaps it in for the runtime's in-process `Environment`; nothing else of the local stack changes.

This module imports only the standard library: a `spawn` child imports it, and what it imports
would count as the environment's cold start.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import re
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Set by the benchmark before the stack starts: the multiprocessing start method and, for
# forkserver, the modules the server imports once (every environment is forked from it).
START_METHOD = "spawn"
PRELOAD: list[str] = []
_contexts: dict[str, Any] = {}
_lock = threading.Lock()


def _context() -> Any:
    with _lock:
        if START_METHOD not in _contexts:
            ctx = multiprocessing.get_context(START_METHOD)
            if START_METHOD == "forkserver" and PRELOAD:
                ctx.set_forkserver_preload(PRELOAD)
            _contexts[START_METHOD] = ctx
        return _contexts[START_METHOD]


def _picklable(exc: BaseException) -> BaseException:
    import pickle  # nosec B403  # round trip of our own object

    try:
        pickle.loads(pickle.dumps(exc))  # nosec B301  # loads what dumps just made
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def serve(conn: Connection, env: dict[str, str], sys_path: list[str], name: str, path: str, attr: str) -> None:
    """The child: load the handler (the cold start), then invoke it for every (event, context) received."""
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = [str(Path(path).parent), *sys_path]  # the handler's directory first, as in Lambda
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        handler = getattr(module, attr)
    except BaseException as exc:
        conn.send(("error", _picklable(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        event, context = message
        try:
            conn.send(("ok", handler(event, context)))
        except BaseException as exc:
            conn.send(("error", _picklable(exc)))


class ProcessEnvironment:
    """One execution environment in a child process: created (cold start) at construction."""

    def __init__(self, function: Any, root: Path, number: int) -> None:
        self.function = function
        self.number = number
        self.invocations = 0
        code_dir = (root / function.code_uri).resolve()
        module_name, attr = function.handler.rsplit(".", 1)
        path = code_dir / (module_name.replace(".", "/") + ".py")
        self.module_name = "local_fn_" + re.sub(r"\W", "_", f"{function.logical_id}__{module_name}__{number}")
        ctx = _context()
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=serve,
            args=(child, dict(os.environ), list(sys.path), module_name, str(path), attr),
            name=self.module_name,
            daemon=True,
        )
        self.process.start()
        child.close()
        status, value = self._conn.recv()
        if status != "ready":
            self.process.join(timeout=5)
            raise value

    def invoke(self, event: Any, context: Any) -> Any:
        self.invocations += 1
        self._conn.send((event, context))
        status, value = self._conn.recv()
        if status != "ok":
            raise value
        return value

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
