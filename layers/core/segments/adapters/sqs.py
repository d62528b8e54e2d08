"""SQS batches: Powertools' `BatchProcessor` with every failed message logged.

Powertools logs a record's failure at debug only, so a message retried until the DLQ would leave
no line naming it. `LoggedFailures` logs one WARNING per failed message: its id, how often it was
received, and the error's kind; never the body nor the exception's text (which may quote it).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, BatchProcessor, EventType

from segments.observability import logger


def _log_failure(what: str, record: Any, exception: Any) -> None:
    received = getattr(getattr(record, "attributes", None), "approximate_receive_count", None)
    logger.warning(
        f"{what} message failed; the queue will redeliver it (the DLQ after maxReceiveCount)",
        extra={
            "message_id": getattr(record, "message_id", None),
            "receive_count": int(str(received)) if str(received).isdigit() else None,
            "error": getattr(exception[0], "__name__", "unknown"),
        },
    )


class LoggedFailures(BatchProcessor):
    """A `BatchProcessor` whose every failed message leaves one line naming it; `what` names the
    messages in that line ("person event")."""

    def __init__(self, what: str) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.what = what

    def failure_handler(self, record: Any, exception: Any) -> Any:
        _log_failure(self.what, record, exception)
        return super().failure_handler(record, exception)


class ConcurrentLoggedFailures(AsyncBatchProcessor):
    """`LoggedFailures` for a batch whose messages are handled at once (an async record handler):
    one slow message holds up none of the others."""

    def __init__(self, what: str) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.what = what

    def failure_handler(self, record: Any, exception: Any) -> Any:
        _log_failure(self.what, record, exception)
        return super().failure_handler(record, exception)


def sqs_processor(what: str) -> LoggedFailures:
    """A batch whose every message failed is reported like any other (each message its own
    failure), not raised: the outcome for SQS is the same, without an invocation error per
    poison batch."""
    return LoggedFailures(what)


def concurrent_sqs_processor(what: str) -> ConcurrentLoggedFailures:
    """`sqs_processor` whose record handler is a coroutine; the batch's messages run concurrently."""
    return ConcurrentLoggedFailures(what)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking `fn` on a worker thread, in a copy of the caller's context (log keys, metrics)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(None, lambda: context.run(fn, *args))
