"""DynamoDB plumbing: the client, marshalling, one error translator, retries, batches and
transactions whose cancellation reasons are read by name. No key format and no record shape here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnection

from segments import aws, errors
from segments.aws import backoff  # the store's retries wait through it (tests patch it here)
from segments.config import get_settings

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
MAX_ATTEMPTS = 8  # our own retries of UnprocessedItems/UnprocessedKeys and throttling
CONFLICT_ATTEMPTS = 6  # transactions cancelled by another transaction on the same items
PARALLEL_CALLS = 8  # concurrent batch calls of one request (the client's pool holds 32 connections)

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
# No answer from DynamoDB once botocore's own retries are spent: read and connect timeouts, refused,
# closed or unreachable connections (ReadTimeoutError, ConnectionClosedError, ConnectTimeoutError,
# EndpointConnectionError...). The store may be fine a moment later: Retryable, never a 500.
UNANSWERED = (HTTPClientError, NoConnection)
# Cancellation reasons (per transaction item) that say "try again", not "your condition failed".
_TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_ser = TypeSerializer()
_deser = TypeDeserializer()


def client() -> Any:
    """The DynamoDB client (segments.aws: created once per container, honours AWS_ENDPOINT_URL)."""
    return aws.dynamodb()


def table() -> str:
    return get_settings().table_name


# ------------------------------------------------------------------ marshalling


def plain(value: Any) -> Any:
    """Decimals back to int (or float when fractional), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Python dict -> DynamoDB attribute map (None values are left out)."""
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute map -> Python dict with ints/floats instead of Decimal."""
    return {k: plain(_deser.deserialize(v)) for k, v in item.items()}


def values(**kwargs: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=...) -> {':now': {...}}."""
    return {f":{k}": _ser.serialize(v) for k, v in kwargs.items()}


# ------------------------------------------------------------------ errors and retries


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_retryable(exc: ClientError) -> bool:
    return error_code(exc) in RETRYABLE_CODES


def is_condition_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def translate(exc: ClientError) -> Exception:
    """One translator for boto3 errors: throttling -> Retryable; everything else stays internal.

    Conditional failures are interpreted by the caller, which knows what the condition meant.
    """
    if is_retryable(exc):
        return errors.Retryable()
    return exc


@contextmanager
def answered() -> Iterator[None]:
    """Around every DynamoDB call: no answer (UNANSWERED) becomes Retryable (503 with Retry-After).
    A write that timed out may or may not have been applied; a retry with the same
    Idempotency-Key, or of an idempotent write, settles it."""
    try:
        yield
    except UNANSWERED as exc:
        raise errors.Retryable() from exc


def call(operation: str, **kwargs: Any) -> dict[str, Any]:
    """Call a DynamoDB operation; throttling that outlives botocore's retries becomes Retryable."""
    try:
        with answered():
            result: dict[str, Any] = getattr(client(), operation)(**kwargs)
        return result
    except ClientError as exc:
        raise translate(exc) from exc


def call_through_conflicts(operation: str, **kwargs: Any) -> dict[str, Any]:
    """Like call(), but a single-item write that met a transaction on its item
    (TransactionConflictException, which botocore does not retry) is retried here, bounded and
    jittered; a failed condition is left to the caller (ClientError)."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            with answered():
                result: dict[str, Any] = getattr(client(), operation)(**kwargs)
            return result
        except ClientError as exc:
            if error_code(exc) != "TransactionConflictException" or attempt == CONFLICT_ATTEMPTS - 1:
                raise
        backoff(attempt + 1)
    raise AssertionError("unreachable")


def update_if(**request: Any) -> bool:
    """A conditional UpdateItem (retried through transaction conflicts): False when its condition failed."""
    try:
        call_through_conflicts("update_item", **request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise translate(exc) from exc
    return True


# ------------------------------------------------------------------ transactions


class Cancelled(Exception):
    """A transaction was cancelled because a condition failed: `reasons` by item name."""

    def __init__(self, reasons: Mapping[str, str], items: Mapping[str, dict[str, Any]] | None = None) -> None:
        super().__init__(", ".join(f"{name}: {code}" for name, code in reasons.items()))
        self.reasons = dict(reasons)
        # The stored item of a failed condition, where the request asked for it
        # (ReturnValuesOnConditionCheckFailure: ALL_OLD), as a plain dict.
        self.items = dict(items or {})

    def failed(self, name: str) -> bool:
        """Did the condition of the item called `name` fail?"""
        return self.reasons.get(name) == "ConditionalCheckFailed"


def transact(items: Mapping[str, dict[str, Any]], *, token: str | None = None) -> None:
    """TransactWriteItems of named items ({"segment": {"Put": ...}, "name lock": {...}}).

    The cancellation reasons come back by name, not by position. A cancellation with a failed
    condition raises Cancelled; one caused only by other transactions on the same items
    (TransactionConflict, which real DynamoDB reports and no emulator does) is retried here,
    bounded and jittered; throttling that outlives the retries becomes Retryable.
    """
    names = list(items)
    request: dict[str, Any] = {"TransactItems": [items[n] for n in names]}
    if token:
        request["ClientRequestToken"] = token
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            with answered():
                client().transact_write_items(**request)
            return
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                if is_retryable(exc) and attempt < CONFLICT_ATTEMPTS - 1:
                    backoff(attempt + 1)
                    continue
                raise translate(exc) from exc
            reasons = _reasons(exc, names)
            if "ConditionalCheckFailed" in reasons.values():
                raise Cancelled(reasons, _old_items(exc, names)) from exc
            if not set(reasons.values()) & _TRANSIENT_REASONS:
                raise Cancelled(reasons) from exc  # e.g. ValidationError: not worth retrying
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise errors.Retryable() from exc
        backoff(attempt + 1)


def _old_items(exc: ClientError, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    listed = exc.response.get("CancellationReasons") or []
    return {
        name: from_item(listed[i]["Item"]) for i, name in enumerate(names) if i < len(listed) and listed[i].get("Item")
    }


def _reasons(exc: ClientError, names: Sequence[str]) -> dict[str, str]:
    listed = exc.response.get("CancellationReasons") or []
    return {name: str((listed[i] if i < len(listed) else {}).get("Code", "None")) for i, name in enumerate(names)}


# ------------------------------------------------------------------ batches and queries


def chunks[T](seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _in_rounds(round_: Callable[[], bool], busy: str) -> None:
    """Repeat `round_` (True = something is left) with backoff after throttling or leftovers;
    after MAX_ATTEMPTS more rounds the store is declared busy (Retryable). Nothing is dropped."""
    attempt = 0
    while True:
        try:
            with answered():
                left = round_()
        except ClientError as exc:
            if not is_retryable(exc) or attempt >= MAX_ATTEMPTS:
                raise translate(exc) from exc
            left = True
        if not left:
            return
        attempt += 1
        if attempt > MAX_ATTEMPTS:
            raise errors.Retryable(busy)
        backoff(attempt)


def batch_write(requests: Sequence[dict[str, Any]], *, table_name: str | None = None) -> None:
    """BatchWriteItem in chunks of 25; UnprocessedItems retried with backoff, never dropped.

    `requests` are WriteRequest dicts ({"PutRequest": {"Item": ...}} or {"DeleteRequest": ...}),
    on the segments table unless `table_name` names another.
    Raises Retryable when the store keeps refusing after MAX_ATTEMPTS rounds.
    """
    name = table_name or table()
    for chunk in chunks(requests, BATCH_WRITE_MAX):
        pending: list[dict[str, Any]] = list(chunk)

        def write_round() -> bool:
            nonlocal pending
            result = client().batch_write_item(RequestItems={name: pending})
            pending = list((result.get("UnprocessedItems") or {}).get(name, []))
            return bool(pending)

        _in_rounds(write_round, "The store is busy; part of the request was not written")


def batch_get(
    keys: Sequence[dict[str, Any]],
    *,
    projection: str | None = None,
    names: dict[str, str] | None = None,
    consistent: bool = True,
) -> list[dict[str, Any]]:
    """BatchGetItem in chunks of 100; UnprocessedKeys retried with backoff. Returns raw items."""
    name = table()
    found: list[dict[str, Any]] = []
    for chunk in chunks(keys, BATCH_GET_MAX):
        request: dict[str, Any] = {"Keys": list(chunk), "ConsistentRead": consistent}
        if projection:
            request["ProjectionExpression"] = projection
        if names:
            request["ExpressionAttributeNames"] = names

        def read_round() -> bool:
            nonlocal request
            result = client().batch_get_item(RequestItems={name: request})
            found.extend(result.get("Responses", {}).get(name, []))
            unprocessed = (result.get("UnprocessedKeys") or {}).get(name, {}).get("Keys", [])
            request = {**request, "Keys": list(unprocessed)}
            return bool(unprocessed)

        _in_rounds(read_round, "The store is busy; part of the request was not read")
    return found


def in_parallel[T](fn: Callable[[Sequence[T]], Any], requests: Sequence[T], size: int) -> list[Any]:
    """Run `fn` over chunks of `size` on up to PARALLEL_CALLS threads; the first failure stops the rest."""
    parts = list(chunks(requests, size))
    if len(parts) <= 1:
        return [fn(part) for part in parts]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(parts))) as pool:
        futures = [pool.submit(fn, part) for part in parts]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def put_items(items: Sequence[dict[str, Any]]) -> None:
    """Write whole items with BatchWriteItem, 25 a call, several calls at once; all are written or it raises."""
    in_parallel(batch_write, [{"PutRequest": {"Item": to_item(i)}} for i in items], BATCH_WRITE_MAX)


def query_pages(**kwargs: Any) -> Iterable[dict[str, Any]]:
    """Query, following LastEvaluatedKey; yields each page's raw response."""
    request = {"TableName": table(), **kwargs}
    while True:
        page = call("query", **request)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def limited(request: dict[str, Any], want: int) -> Iterator[dict[str, Any]]:
    """Raw items of a filtered Query, at most `want`, reading no more than needed (Limit per call)."""
    request = {"TableName": table(), **request}
    remaining = want
    while remaining > 0:
        page = call("query", **request, Limit=remaining)
        for item in page.get("Items", []):
            yield item
            remaining -= 1
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def get(key: dict[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
    """One item as a plain dict, or None."""
    item = call("get_item", TableName=table(), Key=key, ConsistentRead=consistent).get("Item")
    return from_item(item) if item else None
