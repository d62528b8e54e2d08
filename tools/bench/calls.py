"""Counting the AWS calls of a benchmark: a botocore before-call hook on every client made."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self


@dataclass
class Call:
    operation: str
    tables: list[str]

    WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

    @property
    def is_write(self) -> bool:
        return self.operation in self.WRITES

    def __str__(self) -> str:
        return f"{self.operation}({', '.join(self.tables)})"


def _tables_in(body: Any) -> list[str]:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return []
    found: list[str] = []
    if "TableName" in params:
        found.append(params["TableName"])
    for key in ("RequestItems",):  # BatchGetItem / BatchWriteItem
        found.extend(params.get(key, {}))
    for item in params.get("TransactItems", []):  # TransactWriteItems / TransactGetItems
        for op in item.values():
            if isinstance(op, dict) and "TableName" in op:
                found.append(op["TableName"])
    return sorted(set(found), key=found.index)


class _BeforeCalls:
    """While active, `_hook` goes on the `before-call` events of every new client of `services`,
    whichever boto3 or botocore session makes it; `calls` is what the hook records."""

    services: frozenset[str]
    calls: list[Any]

    def __init__(self) -> None:
        self._original: Any = None

    _hook: Callable[..., None]

    def __enter__(self) -> Self:
        import botocore.session

        original = botocore.session.Session.create_client
        hook, services = self._hook, self.services

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            name = client.meta.service_model.service_name
            if name in services:
                client.meta.events.register(f"before-call.{name}", hook)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import botocore.session

        botocore.session.Session.create_client = self._original  # type: ignore[method-assign]

    def clear(self) -> None:
        self.calls.clear()


class DynamoCalls(_BeforeCalls):
    """Counts DynamoDB API calls (not HTTP retries) of every client created while active.

    A `before-call.dynamodb` hook goes on each new client's `meta.events`, whichever boto3 or
    botocore session made it (the core's client and the Powertools idempotency client alike).
    Clients must be created inside the block: reset the core's cached client first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.services = frozenset({"dynamodb"})
        self.calls: list[Call] = []

    def _hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(Call(model.name, _tables_in(params.get("body"))))

    def summary(self) -> str:
        writes = sum(c.is_write for c in self.calls)
        listing = ", ".join(str(c) for c in self.calls) or "none"
        return f"{len(self.calls)} call(s), {writes} write(s): {listing}"


class ServiceCalls(_BeforeCalls):
    """Counts the API calls of the named services (`dynamodb`, `events`, ...) of every client created
    while active, as DynamoCalls does for DynamoDB; `calls` are (service, operation) pairs."""

    def __init__(self, *services: str) -> None:
        super().__init__()
        self.services = frozenset(services)
        self.calls: list[tuple[str, str]] = []

    def _hook(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def by_operation(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for service, op in self.calls:
            name = op if service == "dynamodb" else f"{service}:{op}"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))
