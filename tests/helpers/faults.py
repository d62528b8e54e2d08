"""Storage faults, injected where they happen: in botocore, on the core's DynamoDB client.

A hook on `before-call.dynamodb.<Operation>` of `dynamo.client().meta.events` answers a call
instead of DynamoDB: with an error (botocore raises the ClientError, as it would for DynamoDB's
answer), or with half the work done and the rest handed back as UnprocessedItems/UnprocessedKeys.
Everything above the client -- the store's retries and translation, the use cases, the lease, the
surfaces -- runs unchanged. botocore's own retries never see an answered call: each injected error
is exactly one attempt of the store's retry loops.

    with inject("TransactWriteItems", THROTTLED) as fault:  # every call throttled
    with inject("BatchWriteItem", THROTTLED, after=3):      # the first three pass, then all throttled
    with inject("BatchGetItem", THROTTLED, times=2):        # the first two throttled
    with partial("BatchWriteItem", when=is_ledger):         # half of each ledger batch left unprocessed
    with watch("Query", when=is_count) as counts:           # only count (counts.hits)

`when(request)` sees the call's request (the DynamoDB JSON body, decoded: the low-level client's
keyword arguments) for every call of the operation while installed. Installing a fault creates the
store's client if needed; a `store.reset()` inside the block drops it (the new client has no hook).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from segments.store import dynamo

THROTTLED = "ProvisionedThroughputExceededException"

Request = dict[str, Any]
Answer = tuple[int, dict[str, Any]]  # HTTP status, parsed body


@dataclass
class Fault:
    """What an installed fault saw: `calls` of its operation, `hits` answered by it (or, for
    watch(), matching `when`). Set `active = False` to let later calls through."""

    operation: str
    calls: int = 0
    hits: int = 0
    active: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _always(request: Request) -> bool:
    return True


@contextmanager
def _installed(operation: str, answer: Callable[[Request, Fault], Answer | None]) -> Iterator[Fault]:
    fault = Fault(operation)
    event = f"before-call.dynamodb.{operation}"
    unique_id = f"tests.helpers.faults:{id(fault)}"

    def hook(params: dict[str, Any], **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        answered = answer(request, fault) if fault.active else None
        if answered is None:
            return None  # sent to DynamoDB (moto) as usual
        status, parsed = answered
        return SimpleNamespace(status_code=status, headers={}), parsed

    events = dynamo.client().meta.events
    events.register_first(event, hook, unique_id=unique_id)
    try:
        yield fault
    finally:
        events.unregister(event, unique_id=unique_id)


@contextmanager
def inject(
    operation: str,
    error_code: str = THROTTLED,
    *,
    message: str = "Injected by the tests",
    times: int | None = None,
    after: int = 0,
    when: Callable[[Request], bool] = _always,
    status: int = 400,
) -> Iterator[Fault]:
    """Answer calls of `operation` with the error `error_code`: those for which `when(request)`
    holds, once `after` calls have passed, at most `times` of them (None: no limit)."""

    def answer(request: Request, fault: Fault) -> Answer | None:
        matches = when(request)
        with fault.lock:
            fault.calls += 1
            if not matches or fault.calls <= after or (times is not None and fault.hits >= times):
                return None
            fault.hits += 1
        return status, {
            "Error": {"Code": error_code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    with _installed(operation, answer) as fault:
        yield fault


@contextmanager
def watch(operation: str, *, when: Callable[[Request], bool] = _always) -> Iterator[Fault]:
    """Count calls of `operation` (`hits`: those matching `when`); nothing is changed."""

    def answer(request: Request, fault: Fault) -> None:
        matches = when(request)
        with fault.lock:
            fault.calls += 1
            fault.hits += matches

    with _installed(operation, answer) as fault:
        yield fault


@contextmanager
def partial(operation: str, *, when: Callable[[Request], bool] = _always, stuck: bool = False) -> Iterator[Fault]:
    """BatchWriteItem or BatchGetItem calls (for which `when(request)` holds) do the first half of
    their work and hand the rest back unprocessed, as DynamoDB does under load. A single item is
    done whole unless `stuck`: then nothing of it is ever done."""
    client = dynamo.client()
    smallest = 1 if stuck else 2
    inner = threading.local()  # the half we pass on goes through the same hook

    def send(method: Callable[..., dict[str, Any]], request_items: dict[str, Any]) -> dict[str, Any]:
        inner.passing = True
        try:
            return method(RequestItems=request_items)
        finally:
            inner.passing = False

    def answer(request: Request, fault: Fault) -> Answer | None:
        if getattr(inner, "passing", False):
            return None
        with fault.lock:
            fault.calls += 1
        [(table, work)] = request["RequestItems"].items()
        items = work if operation == "BatchWriteItem" else work["Keys"]
        if len(items) < smallest or not when(request):
            return None
        with fault.lock:
            fault.hits += 1
        half = len(items) // 2
        if operation == "BatchWriteItem":
            done = send(client.batch_write_item, {table: items[:half]}) if half else {}
            return 200, {**done, "UnprocessedItems": {table: items[half:]}}
        done = send(client.batch_get_item, {table: {**work, "Keys": items[:half]}}) if half else {}
        return 200, {"Responses": {table: []}, **done, "UnprocessedKeys": {table: {**work, "Keys": items[half:]}}}

    if operation not in ("BatchWriteItem", "BatchGetItem"):
        raise ValueError(f"partial() answers batch operations, not {operation}")
    with _installed(operation, answer) as fault:
        yield fault


def skip_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's retries without the sleeps between them (the `no_backoff` fixture).

    A speed seam, deliberately kept as a patch of `dynamo.backoff`: every retry loop still runs
    and counts its attempts exactly as in production; only the jittered sleep between attempts
    is skipped. Without it a request throttled until the store gives up sleeps for seconds
    (MAX_ATTEMPTS rounds of up to 2 s each), which says nothing more about the behaviour."""
    monkeypatch.setattr(dynamo, "backoff", lambda attempt, base=0.05, cap=2.0: None)
