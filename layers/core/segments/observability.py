"""Logger and metrics, created once. Tracer is left out on purpose: see docs/decisions.md.

Per-invocation state is context-local: `observed` (the handler decorator) puts the Lambda context
keys and the correlation id in the logger's context-local keys (Powertools'
`thread_safe_append_keys`, a ContextVar) and gives the invocation its own metric set, flushed as
one EMF blob when it returns. Nothing of one invocation can land in another's log lines or
metrics, even when a local runtime runs several invocations in one process at the same time.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from segments.timefmt import request_id_from

# A replayed (idempotent) response or an error-free read adds no metric; that is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

NAMESPACE = "Segments"
SERVICE = "segments"

logger = Logger(service=SERVICE)

# Powertools' `Metrics` keeps its metric set in class-level dicts that every instance shares;
# `EphemeralMetrics` (its provider) keeps them per instance. One per invocation, in a ContextVar.
_outside_invocations = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
_invocation_metrics: ContextVar[EphemeralMetrics | None] = ContextVar("invocation_metrics", default=None)


def current_metrics() -> EphemeralMetrics:
    """The running invocation's metrics (outside `observed`: one process-wide set, as before)."""
    return _invocation_metrics.get() or _outside_invocations


class _MetricsProxy:
    """`metrics.add_metric(...)` etc. act on the running invocation's own metric set."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current_metrics(), name)

    def __repr__(self) -> str:
        return f"<metrics of the current invocation: {current_metrics()!r}>"


metrics: Any = _MetricsProxy()


def correlation_id() -> str | None:
    """The running invocation's correlation id, as `observed` set it (None outside `observed`)."""
    value = logger.thread_safe_get_current_keys().get("correlation_id")
    return str(value) if value else None


def append_request_keys(**keys: Any) -> None:
    """Keys on every later log line of this invocation only (context-local)."""
    logger.thread_safe_append_keys(**keys)


def _correlation_id(event: Any, context: Any) -> str | None:
    """API Gateway's request id in the surfaces' `req_<hex>` form; for a queue or stream batch
    (no API request behind it), the invocation's own Lambda request id in the same form, so every
    line an invocation logs can be found by one id."""
    request_context = event.get("requestContext") if isinstance(event, Mapping) else None
    if isinstance(request_context, Mapping) and request_context.get("requestId"):
        return request_id_from(str(request_context["requestId"]))
    aws_request_id = getattr(context, "aws_request_id", None)
    return request_id_from(str(aws_request_id)) if aws_request_id else None


def observed(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The one handler decorator: Lambda context keys and correlation id on every log line,
    a metric set of the invocation's own, flushed (EMF, stdout) when the handler returns or raises.

    `cold_start` is true on the first invocation of the decorated handler, i.e. per loaded copy
    of the handler module (per execution environment)."""
    cold = [True]

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        cold_start, cold[0] = cold[0], False
        invocation_metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        token = _invocation_metrics.set(invocation_metrics)
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(
            cold_start=cold_start,
            function_name=getattr(context, "function_name", None),
            function_memory_size=getattr(context, "memory_limit_in_mb", None),
            function_arn=getattr(context, "invoked_function_arn", None),
            function_request_id=getattr(context, "aws_request_id", None),
            correlation_id=_correlation_id(event, context),
        )
        try:
            return handler(event, context)
        finally:
            try:
                if invocation_metrics.metric_set:
                    invocation_metrics.flush_metrics()
            finally:
                logger.thread_safe_clear_keys()
                _invocation_metrics.reset(token)

    return wrapper


__all__ = [
    "MetricUnit",
    "append_request_keys",
    "correlation_id",
    "current_metrics",
    "logger",
    "metrics",
    "observed",
]
