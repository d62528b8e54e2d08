"""Powertools' per-process request state, made context-local for environments sharing a process.

`ApiGatewayResolver.resolve()` stores the event and the Lambda context on the class
(`BaseRouter.current_event = ...`), so every resolver of the process reads the last one set; the
request validation reads the body from there. On Lambda a process runs one invocation at a
time, so that is harmless; with several environments in one process, one request would be
validated with another's body. Installed once by the runtime: resolvers read both from
ContextVars set around each `resolve()` call (each invocation runs in its own Context).
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any

_event: ContextVar[Any] = ContextVar("resolver_current_event", default=None)
_lambda_context: ContextVar[Any] = ContextVar("resolver_lambda_context", default=None)
_installed = False


def isolate_resolver_state() -> None:
    """Patch Powertools' REST/HTTP/ALB resolvers once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, BaseRouter
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

    def shared(name: str) -> Any:
        return BaseRouter.__dict__.get(name)  # what resolve() stored on the class: outside resolve() only

    def get_event(self: Any) -> Any:
        value = _event.get()
        return value if value is not None else shared("current_event")

    def get_context(self: Any) -> Any:
        value = _lambda_context.get()
        return value if value is not None else shared("lambda_context")

    original_resolve = ApiGatewayResolver.resolve

    @functools.wraps(original_resolve)
    def resolve(self: Any, event: Any, context: Any) -> Any:
        raw = event.raw_event if isinstance(event, BaseProxyEvent) else event
        tokens = (_event.set(self._to_proxy_event(raw)), _lambda_context.set(context))
        try:
            return original_resolve(self, event, context)
        finally:
            _event.reset(tokens[0])
            _lambda_context.reset(tokens[1])

    ApiGatewayResolver.current_event = property(get_event, lambda self, value: _event.set(value))  # type: ignore[assignment]
    ApiGatewayResolver.lambda_context = property(get_context, lambda self, value: _lambda_context.set(value))  # type: ignore[assignment]
    ApiGatewayResolver.resolve = resolve  # type: ignore[method-assign]
    _installed = True
