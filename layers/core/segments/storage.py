"""The only module that speaks DynamoDB.

Single table (TABLE_NAME), keys `pk`/`sk`:

| item         | pk                 | sk                 | notes                                         |
|--------------|--------------------|--------------------|-----------------------------------------------|
| segment      | ORG#{org}          | SEG#{segment_id}   | metadata, current_size, member-write lease     |
| name lock    | ORG#{org}          | NAME#{name key}    | written with the segment in one transaction   |
| member       | SEG#{segment_id}   | PID#{pid}          | active flag, first/last_added_at; gsi2 by pid |
| ledger       | SEG#{segment_id}   | LOG#{at}#{req}#{n} | one item per request chunk, many pids          |
| api key      | KEY#{sha256}       | KEY                | authorizer lookup                             |
| api key id   | KEYID#{key_id}     | KEYID              | listing (gsi1 by org) and revocation          |

gsi1 (gsi1pk/gsi1sk): ORG#{org}#SEGS -> {created_at}#{id} (newest first); ORG#{org}#KEYS.
gsi2 (gsi2pk/gsi2sk): ORG#{org}#PID#{pid} -> SEG#{segment_id}, present only while a member.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from segments import errors
from segments.config import get_settings

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
MAX_ATTEMPTS = 8  # our own retries of UnprocessedItems/UnprocessedKeys and throttling

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

_ser = TypeSerializer()
_deser = TypeDeserializer()


@lru_cache(maxsize=1)
def client() -> Any:
    """The DynamoDB client, created once per container (honours AWS_ENDPOINT_URL)."""
    settings = get_settings()
    return boto3.client(
        "dynamodb",
        region_name=settings.region,
        config=Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=2,
            read_timeout=5,
            tcp_keepalive=True,
            max_pool_connections=32,
        ),
    )


def table() -> str:
    return get_settings().table_name


def reset() -> None:
    """Forget the cached client and settings (tests switch endpoints and env)."""
    client.cache_clear()
    get_settings.cache_clear()


# ------------------------------------------------------------------ marshalling


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Python dict -> DynamoDB attribute map (None values are left out)."""
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute map -> Python dict with ints/floats instead of Decimal."""
    return {k: _plain(_deser.deserialize(v)) for k, v in item.items()}


def values(**kwargs: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: values(now=...) -> {':now': {...}}."""
    return {f":{k}": _ser.serialize(v) for k, v in kwargs.items()}


# ------------------------------------------------------------------ errors and retries


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_retryable(exc: ClientError) -> bool:
    return error_code(exc) in RETRYABLE_CODES


def cancellation_codes(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


def translate(exc: ClientError) -> Exception:
    """One translator for boto3 errors: throttling -> Retryable; everything else stays internal.

    Conditional failures are interpreted by the caller, which knows what the condition meant.
    """
    if is_retryable(exc):
        return errors.Retryable()
    return exc


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> None:
    """Full-jitter exponential backoff."""
    time.sleep(random.uniform(0, min(cap, base * (2**attempt))))


def call(operation: str, **kwargs: Any) -> dict[str, Any]:
    """Call a DynamoDB operation; throttling that outlives botocore's retries becomes Retryable."""
    try:
        result: dict[str, Any] = getattr(client(), operation)(**kwargs)
        return result
    except ClientError as exc:
        raise translate(exc) from exc


def chunks[T](seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def batch_write(
    requests: Sequence[dict[str, Any]],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """BatchWriteItem in chunks of 25; UnprocessedItems retried with backoff, never dropped.

    `requests` are WriteRequest dicts ({"PutRequest": {"Item": ...}} or {"DeleteRequest": ...}).
    Raises Retryable when the store keeps refusing after MAX_ATTEMPTS rounds.
    """
    name = table()
    for chunk in chunks(requests, BATCH_WRITE_MAX):
        pending: list[dict[str, Any]] = list(chunk)
        attempt = 0
        while pending:
            try:
                result = client().batch_write_item(RequestItems={name: pending})
            except ClientError as exc:
                if not is_retryable(exc) or attempt >= MAX_ATTEMPTS:
                    raise translate(exc) from exc
                attempt += 1
                backoff(attempt)
                continue
            pending = list((result.get("UnprocessedItems") or {}).get(name, []))
            if pending:
                attempt += 1
                if attempt > MAX_ATTEMPTS:
                    raise errors.Retryable("The store is busy; part of the request was not written")
                backoff(attempt)
        if on_progress:
            on_progress(len(chunk))


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
        attempt = 0
        while request["Keys"]:
            try:
                result = client().batch_get_item(RequestItems={name: request})
            except ClientError as exc:
                if not is_retryable(exc) or attempt >= MAX_ATTEMPTS:
                    raise translate(exc) from exc
                attempt += 1
                backoff(attempt)
                continue
            found.extend(result.get("Responses", {}).get(name, []))
            unprocessed = (result.get("UnprocessedKeys") or {}).get(name, {}).get("Keys", [])
            request = {**request, "Keys": list(unprocessed)}
            if unprocessed:
                attempt += 1
                if attempt > MAX_ATTEMPTS:
                    raise errors.Retryable("The store is busy; part of the request was not read")
                backoff(attempt)
    return found


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


# ------------------------------------------------------------------ keys


def org_pk(org_id: str) -> str:
    return f"ORG#{org_id}"


def segment_sk(segment_id: str) -> str:
    return f"SEG#{segment_id}"


def segment_key(org_id: str, segment_id: str) -> dict[str, Any]:
    return {"pk": {"S": org_pk(org_id)}, "sk": {"S": segment_sk(segment_id)}}


def name_lock_key(org_id: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": org_pk(org_id)}, "sk": {"S": f"NAME#{key}"}}


# ------------------------------------------------------------------ segments


def segment_item(segment: dict[str, Any], name_key: str) -> dict[str, Any]:
    org_id, segment_id = segment["org_id"], segment["segment_id"]
    return {
        **segment,
        "pk": org_pk(org_id),
        "sk": segment_sk(segment_id),
        "name_key": name_key,
        "gsi1pk": f"ORG#{org_id}#SEGS",
        "gsi1sk": f"{segment['created_at']}#{segment_id}",
    }


_STORAGE_ONLY = frozenset(
    {"pk", "sk", "gsi1pk", "gsi1sk", "name_key", "lease_owner", "lease_until", "size_dirty"}
)


def segment_from_item(item: dict[str, Any]) -> dict[str, Any]:
    data = from_item(item)
    return {k: v for k, v in data.items() if k not in _STORAGE_ONLY}


def put_segment_with_name(segment: dict[str, Any], name_key: str) -> None:
    """Create a segment and its name lock in one transaction: both must not exist yet.

    Raises NameTaken when the name lock exists (a live segment of this org has the name).
    """
    org_id = segment["org_id"]
    lock = {
        "pk": org_pk(org_id),
        "sk": f"NAME#{name_key}",
        "segment_id": segment["segment_id"],
        "created_at": segment["created_at"],
    }
    try:
        client().transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(segment_item(segment, name_key)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(lock),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
            ClientRequestToken=segment["segment_id"],
        )
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            codes = cancellation_codes(exc)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise errors.NameTaken(segment["name"]) from exc
            if any(c in RETRYABLE_CODES or c == "TransactionConflict" for c in codes):
                raise errors.Retryable() from exc
        raise translate(exc) from exc


def get_segment(org_id: str, segment_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
    """The live segment, or None when missing, deleted, or another org's."""
    result = call("get_item", TableName=table(), Key=segment_key(org_id, segment_id), ConsistentRead=consistent)
    item = result.get("Item")
    if not item:
        return None
    segment = segment_from_item(item)
    if segment.get("record_state") != "active":
        return None
    return segment


# ------------------------------------------------------------------ API keys


def put_api_key(record: dict[str, Any]) -> None:
    """Write the hash-keyed item (authorizer) and the id-keyed item (listing, revocation) together."""
    by_hash = {**record, "pk": f"KEY#{record['key_hash']}", "sk": "KEY"}
    by_id = {
        **record,
        "pk": f"KEYID#{record['key_id']}",
        "sk": "KEYID",
        "gsi1pk": f"ORG#{record['org_id']}#KEYS",
        "gsi1sk": f"{record['created_at']}#{record['key_id']}",
    }
    try:
        client().transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table(),
                        "Item": to_item(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for item in (by_hash, by_id)
            ]
        )
    except ClientError as exc:
        raise translate(exc) from exc


def get_api_key_by_hash(key_hash: str) -> dict[str, Any] | None:
    result = call("get_item", TableName=table(), Key={"pk": {"S": f"KEY#{key_hash}"}, "sk": {"S": "KEY"}})
    item = result.get("Item")
    return from_item(item) if item else None


def get_api_key_by_id(key_id: str) -> dict[str, Any] | None:
    result = call(
        "get_item",
        TableName=table(),
        Key={"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": "KEYID"}},
        ConsistentRead=True,
    )
    item = result.get("Item")
    return from_item(item) if item else None


def set_api_key_status(key_id: str, key_hash: str, status: str, at: str) -> None:
    keys = [
        {"pk": {"S": f"KEY#{key_hash}"}, "sk": {"S": "KEY"}},
        {"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": "KEYID"}},
    ]
    try:
        client().transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table(),
                        "Key": key,
                        "UpdateExpression": "SET #s = :s, updated_at = :at",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": values(s=status, at=at),
                    }
                }
                for key in keys
            ]
        )
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            raise errors.NotFound(f"API key {key_id} not found") from exc
        raise translate(exc) from exc


def list_api_keys(org_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in query_pages(
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues=values(pk=f"ORG#{org_id}#KEYS"),
    ):
        found.extend(from_item(i) for i in page.get("Items", []))
    return found
