"""Idempotency-Key support: Powertools idempotency on the use case, persisted in DynamoDB.

A retry with the same key and body within 24 h returns the first response and applies nothing
twice; the same key with another body raises IdempotencyValidationError (422 on the surfaces).
The key is scoped by org and operation, so two orgs (or two endpoints) never share a record.
Imported lazily: requests without the header don't pay for it at cold start.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from segments import aws
from segments.config import get_settings

_current: contextvars.ContextVar[Callable[[], dict[str, Any]]] = contextvars.ContextVar("idempotent_call")
_lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


def register_lambda_context(context: Any) -> None:
    """The invocation's context, so in-progress records expire with it (per invocation, not per process)."""
    _lambda_context.set(context)


@lru_cache(maxsize=1)
def _runner() -> tuple[Callable[..., dict[str, Any]], Any]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    settings = get_settings()
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name, boto3_client=aws.dynamodb())
    config = IdempotencyConfig(
        event_key_jmespath="[org_id, operation, idempotency_key]",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_ttl_seconds,
    )

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=persistence)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        return _current.get()()

    return run, config


def run_once(
    *, org_id: str, operation: str, key: str, payload: Any, fn: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run `fn` once per (org, operation, key); later calls get its first result back."""
    token = _current.set(fn)
    try:
        request = {"org_id": org_id, "operation": operation, "idempotency_key": key, "payload": payload}
        run, config = _runner()
        context = _lambda_context.get()
        if context is not None:
            config.register_lambda_context(context)  # in-progress records expire with the invocation
        return run(request=request)
    finally:
        _current.reset(token)


def reset() -> None:
    _runner.cache_clear()


aws.on_reset(reset)  # the runner holds a client: forgotten with it
