"""The only module that speaks DynamoDB.

Single table (TABLE_NAME), keys `pk`/`sk`:

| item         | pk                 | sk                 | notes                                         |
|--------------|--------------------|--------------------|-----------------------------------------------|
| segment      | ORG#{org}          | SEG#{segment_id}   | metadata, current_size, member-write lease     |
| name lock    | ORG#{org}          | NAME#{name key}    | written with the segment in one transaction   |
| member       | SEG#{segment_id}   | PID#{pid}          | active flag, first/last_added_at; gsi2 by pid |
| ledger       | SEG#{segment_id}   | LOG#{at}#{req}#{n} | one item per request chunk, many pids          |
| person       | ORG#{org}#PERSON   | PID#{pid}          | people registry (PID_VALIDATION=registry)     |
| api key      | KEY#{sha256}       | KEY                | authorizer lookup                             |
| api key id   | KEYID#{key_id}     | KEYID              | listing (gsi1 by org) and revocation          |

gsi1 (gsi1pk/gsi1sk): ORG#{org}#SEGS -> {created_at}#{id} (newest first); ORG#{org}#KEYS.
gsi2 (gsi2pk/gsi2sk): ORG#{org}#PID#{pid} -> SEG#{segment_id}, present only while a member.

Member item: active, first_added_at, last_added_at, removed_at,
last_op = "{change}#{Idempotency-Key or request id}@{at}" (the operation that last changed the
membership, and when: what a retry with the same Idempotency-Key recognises as its own work).
A removal keeps the item (active=false, gsi2 attributes dropped), so a re-add restores first_added_at.

Ledger item: change ("added" | "removed"), pids (at most LEDGER_CHUNK), at, api_request_id, reason.

Member-write lease on the segment item: lease_owner, lease_until (epoch ms), size_dirty. Writers of
one segment's members hold it in turn; size_dirty stays true from acquisition to commit, so a
holder that died mid-write leaves a flag telling the next one to recount (docs/members.md).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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


_client_lock = threading.Lock()


@lru_cache(maxsize=1)
def client() -> Any:
    """The DynamoDB client, created once per container (honours AWS_ENDPOINT_URL).

    Created under a lock: boto3's default session is not safe to build clients from several
    threads at once (the parallel batch calls, the local stack's request threads)."""
    settings = get_settings()
    with _client_lock:
        return _new_client(settings)


def _new_client(settings: Any) -> Any:
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


def batch_write(requests: Sequence[dict[str, Any]]) -> None:
    """BatchWriteItem in chunks of 25; UnprocessedItems retried with backoff, never dropped.

    `requests` are WriteRequest dicts ({"PutRequest": {"Item": ...}} or {"DeleteRequest": ...}).
    Raises Retryable when the store keeps refusing after MAX_ATTEMPTS rounds.
    """
    name = table()
    for chunk in chunks(requests, BATCH_WRITE_MAX):
        pending: list[dict[str, Any]] = list(chunk)

        def write_round() -> bool:
            nonlocal pending
            result = client().batch_write_item(RequestItems={name: pending})
            pending = list((result.get("UnprocessedItems") or {}).get(name, []))
            return bool(pending)

        _in_rounds(write_round, "The store is busy; part of the request was not written")


def _in_rounds(round_: Callable[[], bool], busy: str) -> None:
    """Repeat `round_` (True = something is left) with backoff after throttling or leftovers;
    after MAX_ATTEMPTS more rounds the store is declared busy (Retryable). Nothing is dropped."""
    attempt = 0
    while True:
        try:
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
        # False until a member item is first written: a first fill then needs no reads at all.
        "members_written": False,
    }


_STORAGE_ONLY = frozenset(
    {"pk", "sk", "gsi1pk", "gsi1sk", "name_key", "lease_owner", "lease_until", "size_dirty", "members_written"}
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


# ------------------------------------------------------------------ segment management


class Stale(Exception):
    """The segment changed between our read and our conditional write; read again and retry."""


def get_segment_record(org_id: str, segment_id: str) -> dict[str, Any] | None:
    """The live segment with its name key (for conditional updates), or None."""
    result = call("get_item", TableName=table(), Key=segment_key(org_id, segment_id), ConsistentRead=True)
    item = result.get("Item")
    if not item:
        return None
    data = from_item(item)
    return data if data.get("record_state") == "active" else None


def segments_by_id(org_id: str, segment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The org's live segments among `segment_ids` (BatchGetItem), by id."""
    keys = [segment_key(org_id, sid) for sid in dict.fromkeys(segment_ids)]
    found = (segment_from_item(i) for i in batch_get(keys, consistent=False))
    return {s["segment_id"]: s for s in found if s.get("record_state") == "active"}


def _update_segment_request(
    org_id: str, segment_id: str, *, name_key: str, sets: dict[str, Any], removes: Sequence[str]
) -> dict[str, Any]:
    names = {f"#s{i}": k for i, k in enumerate(sets)} | {f"#r{i}": k for i, k in enumerate(removes)}
    expression = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(sets)))
    if removes:
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    return {
        "TableName": table(),
        "Key": segment_key(org_id, segment_id),
        "UpdateExpression": expression,
        "ConditionExpression": "record_state = :active AND name_key = :old_key",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values(
            active="active", old_key=name_key, **{f"s{i}": v for i, v in enumerate(sets.values())}
        ),
    }


def update_segment(
    org_id: str,
    segment_id: str,
    *,
    old_name_key: str,
    sets: dict[str, Any],
    removes: Sequence[str] = (),
    new_name_key: str | None = None,
) -> None:
    """Change a live segment's fields; a new name key moves its name lock in the same transaction.

    The segment update is conditional on the name key we read (Stale otherwise); the old lock is
    deleted only if it is this segment's; the new lock must not exist (NameTaken otherwise).
    """
    update = _update_segment_request(org_id, segment_id, name_key=old_name_key, sets=sets, removes=removes)
    if new_name_key is None or new_name_key == old_name_key:
        try:
            client().update_item(**update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Stale() from exc
            raise translate(exc) from exc
        return
    lock = {"pk": org_pk(org_id), "sk": f"NAME#{new_name_key}", "segment_id": segment_id,
            "created_at": sets.get("updated_at")}
    items = [
        {"Update": update},
        {
            "Delete": {
                "TableName": table(),
                "Key": name_lock_key(org_id, old_name_key),
                "ConditionExpression": "attribute_not_exists(pk) OR segment_id = :sid",
                "ExpressionAttributeValues": values(sid=segment_id),
            }
        },
        {"Put": {"TableName": table(), "Item": to_item(lock), "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    _transact(items, name=sets.get("name"))


def delete_segment(org_id: str, segment_id: str, *, name_key: str, at: str) -> None:
    """Soft delete: record_state=deleted and the name lock removed, in one transaction."""
    items = [
        {
            "Update": _update_segment_request(
                org_id, segment_id, name_key=name_key,
                sets={"record_state": "deleted", "deleted_at": at, "updated_at": at}, removes=(),
            )
        },
        {
            "Delete": {
                "TableName": table(),
                "Key": name_lock_key(org_id, name_key),
                "ConditionExpression": "attribute_not_exists(pk) OR segment_id = :sid",
                "ExpressionAttributeValues": values(sid=segment_id),
            }
        },
    ]
    _transact(items, name=None)


def _transact(items: list[dict[str, Any]], *, name: str | None) -> None:
    try:
        client().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise translate(exc) from exc
        codes = cancellation_codes(exc)
        if codes and codes[0] == "ConditionalCheckFailed":
            raise Stale() from exc
        if name is not None and len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
            raise errors.NameTaken(name) from exc
        if any(c in RETRYABLE_CODES or c == "TransactionConflict" for c in codes):
            raise errors.Retryable() from exc
        raise Stale() from exc


def list_segments(
    org_id: str, *, after: str | None, limit: int
) -> tuple[list[tuple[dict[str, Any], str]], bool]:
    """The org's live segments newest first (gsi1) after the gsi1sk `after`: ([(segment, gsi1sk)], more)."""
    request: dict[str, Any] = {
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk",
        "FilterExpression": "record_state = :active",
        "ExpressionAttributeValues": values(pk=f"ORG#{org_id}#SEGS", active="active"),
        "ScanIndexForward": False,
    }
    if after:
        request["ExclusiveStartKey"] = {
            "gsi1pk": {"S": f"ORG#{org_id}#SEGS"},
            "gsi1sk": {"S": after},
            "pk": {"S": org_pk(org_id)},
            "sk": {"S": segment_sk(after.rsplit("#", 1)[-1])},
        }
    found = list(_limited(request, limit + 1))
    return [(segment_from_item(i), i["gsi1sk"]["S"]) for i in found[:limit]], len(found) > limit


def _limited(request: dict[str, Any], want: int) -> Iterator[dict[str, Any]]:
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


# ------------------------------------------------------------------ members

LEDGER_CHUNK = 1_000  # PIDs per ledger item (a 66-character PID: ~70 KB, far below 400 KB)


def member_pk(segment_id: str) -> str:
    return f"SEG#{segment_id}"


def member_key(segment_id: str, pid: str) -> dict[str, Any]:
    return {"pk": {"S": member_pk(segment_id)}, "sk": {"S": f"PID#{pid}"}}


def person_key(org_id: str, pid: str) -> dict[str, Any]:
    return {"pk": {"S": f"ORG#{org_id}#PERSON"}, "sk": {"S": f"PID#{pid}"}}


# What a member item holds besides its keys. The PID, segment and org are not stored again: they
# are in the keys (sk PID#{pid}, pk SEG#{segment_id}, gsi2pk ORG#{org}#PID#{pid}) and are derived
# on read. Member writers read these and write the item whole: an attribute added to member items
# belongs here.
MEMBER_FIELDS = ("active", "first_added_at", "last_added_at", "removed_at", "last_op")


def member_item(member: dict[str, Any]) -> dict[str, Any]:
    """A member's stored item (from a dict with org_id, segment_id, minerva_pid and MEMBER_FIELDS);
    the gsi2 attributes exist only while it is active."""
    org_id, segment_id, pid = member["org_id"], member["segment_id"], member["minerva_pid"]
    item = {k: member[k] for k in MEMBER_FIELDS if member.get(k) is not None}
    item |= {"pk": member_pk(segment_id), "sk": f"PID#{pid}"}
    if member.get("active"):
        item |= {"gsi2pk": f"ORG#{org_id}#PID#{pid}", "gsi2sk": segment_sk(segment_id)}
    return item


def _member(item: dict[str, Any]) -> dict[str, Any]:
    data = from_item(item)
    data["minerva_pid"] = str(data.pop("sk")).removeprefix("PID#")
    return data


def get_members(segment_id: str, pids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored memberships (active or not) of these PIDs, by PID: ceil(n/100) consistent BatchGetItem."""
    names = {f"#m{i}": name for i, name in enumerate(("sk", *MEMBER_FIELDS))}

    def read(keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(keys, projection=", ".join(names), names=names)

    parts = _in_parallel(read, [member_key(segment_id, pid) for pid in pids], BATCH_GET_MAX)
    members = (_member(i) for part in parts for i in part)
    return {m["minerva_pid"]: m for m in members}


def ledger_items(
    segment_id: str, *, change: str, pids: Sequence[str], at: str, api_request_id: str, reason: str, first_n: int = 0
) -> list[dict[str, Any]]:
    """Ledger items for one change of one request: one per LEDGER_CHUNK PIDs."""
    return [
        {
            "pk": member_pk(segment_id),
            "sk": f"LOG#{at}#{api_request_id}#{first_n + n:04d}",
            "segment_id": segment_id,
            "change": change,
            "pids": list(chunk),
            "at": at,
            "api_request_id": api_request_id,
            "reason": reason,
        }
        for n, chunk in enumerate(chunks(pids, LEDGER_CHUNK))
    ]


PARALLEL_CALLS = 8  # concurrent batch calls of one request (the client's pool holds 32 connections)


def _in_parallel[T](fn: Callable[[Sequence[T]], Any], requests: Sequence[T], size: int) -> list[Any]:
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
    _in_parallel(batch_write, [{"PutRequest": {"Item": to_item(i)}} for i in items], BATCH_WRITE_MAX)


def logged_pids(segment_id: str, at: str) -> dict[str, set[str]]:
    """PIDs in the ledger items written at `at`, by change (what an interrupted attempt already logged)."""
    logged: dict[str, set[str]] = {}
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=values(pk=member_pk(segment_id), prefix=f"LOG#{at}#"),
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            data = from_item(item)
            logged.setdefault(data["change"], set()).update(data.get("pids") or [])
    return logged


def count_active_members(segment_id: str) -> int:
    """Exact count of active members (Select COUNT over every page): the recount after a crash."""
    total = 0
    for page in query_pages(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        FilterExpression="active = :yes",
        ExpressionAttributeValues=values(pk=member_pk(segment_id), prefix="PID#", yes=True),
        Select="COUNT",
        ConsistentRead=True,
    ):
        total += int(page.get("Count", 0))
    return total


def active_members(segment_id: str, *, after: str | None, want: int) -> list[dict[str, Any]]:
    """Up to `want` active members in PID order, after PID `after` (exclusive).

    ExclusiveStartKey jumps straight to the position, so a deep page reads what the first does.
    """
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "FilterExpression": "active = :yes",
        "ProjectionExpression": "sk, first_added_at",
        "ExpressionAttributeValues": values(pk=member_pk(segment_id), prefix="PID#", yes=True),
    }
    if after is not None:
        request["ExclusiveStartKey"] = member_key(segment_id, after)
    return [_member(i) for i in _limited(request, want)]


def memberships(org_id: str, pid: str) -> list[dict[str, Any]]:
    """The org's current memberships of a PID (sparse gsi2), in segment id order."""
    found: list[dict[str, Any]] = []
    for page in query_pages(
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :pk",
        ExpressionAttributeValues=values(pk=f"ORG#{org_id}#PID#{pid}"),
    ):
        for item in page.get("Items", []):
            data = from_item(item)
            segment_id = str(data["gsi2sk"]).removeprefix("SEG#")
            found.append({"segment_id": segment_id, "minerva_pid": pid, "first_added_at": data.get("first_added_at"),
                          "last_added_at": data.get("last_added_at")})
    return found


def ledger_from(segment_id: str, start_sk: str | None) -> Iterator[dict[str, Any]]:
    """Ledger items oldest first, from `start_sk` (inclusive); read lazily, a few items a call."""
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
        "ExpressionAttributeValues": values(pk=member_pk(segment_id), start=start_sk or "LOG#", end="LOG#~"),
        "Limit": 10,
    }
    while True:
        page = call("query", **request)
        for item in page.get("Items", []):
            yield from_item(item)
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def registered_people(org_id: str, pids: Sequence[str]) -> set[str]:
    """The PIDs among `pids` that have a record in the org's people registry."""
    found = batch_get([person_key(org_id, pid) for pid in pids], projection="sk", consistent=False)
    return {from_item(i)["sk"].removeprefix("PID#") for i in found}


def put_person(org_id: str, pid: str, attrs: dict[str, Any] | None = None) -> None:
    """Create or replace a people-registry record (seeding and tests; the registry has its own writer)."""
    item = {**(attrs or {}), "pk": f"ORG#{org_id}#PERSON", "sk": f"PID#{pid}", "org_id": org_id, "minerva_pid": pid}
    call("put_item", TableName=table(), Item=to_item(item))


# ------------------------------------------------------------------ member-write lease


def acquire_lease(
    org_id: str, segment_id: str, *, owner: str, now_ms: int, until_ms: int
) -> tuple[bool, bool] | None:
    """Take the segment's member-write lease. Returns (dirty, pristine), or None when another
    writer holds it. dirty: the previous holder died mid-write (recount); pristine: no member
    item was ever written (the size is exact and every PID is new, so nothing needs reading).
    Raises NotFound for a missing, deleted or foreign segment.

    The first attempt also requires size_dirty to be false, and only when that is what failed does
    a second attempt take a dirty lease: the answer comes from the condition itself, not from
    ReturnValues, so it holds however the store reports old values.
    """
    free = "record_state = :active AND (attribute_not_exists(lease_owner) OR lease_until < :now)"
    for clean in (True, False):
        condition = free + (" AND (attribute_not_exists(size_dirty) OR size_dirty = :no)" if clean else "")
        vals = values(active="active", now=now_ms, me=owner, until=until_ms, yes=True)
        if clean:
            vals |= values(no=False)
        try:
            taken = client().update_item(
                TableName=table(),
                Key=segment_key(org_id, segment_id),
                UpdateExpression="SET lease_owner = :me, lease_until = :until, size_dirty = :yes",
                ConditionExpression=condition,
                ExpressionAttributeValues=vals,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            written = from_item(taken.get("Attributes") or {}).get("members_written", True)
            return (not clean, clean and written is False)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            old = from_item(exc.response.get("Item") or {})
            if old.get("record_state") != "active":
                raise errors.NotFound("Segment not found") from exc
            if old.get("lease_owner") is not None and int(old.get("lease_until", 0)) >= now_ms:
                return None
    return None


def commit_lease(org_id: str, segment_id: str, *, owner: str, delta: int, base: int | None,
                 updated_at: str | None, wrote_members: bool = False) -> int:
    """Apply the size change, mark the size exact and release the lease; returns the new size."""
    size = ":base + :delta" if base is not None else "if_not_exists(current_size, :zero) + :delta"
    expression = f"SET current_size = {size}, size_dirty = :no"
    vals = values(delta=delta, no=False, me=owner)
    if wrote_members:
        expression += ", members_written = :yes"
        vals |= values(yes=True)
    vals |= values(base=base) if base is not None else values(zero=0)
    if updated_at:
        expression += ", updated_at = :at"
        vals |= values(at=updated_at)
    try:
        result = client().update_item(
            TableName=table(),
            Key=segment_key(org_id, segment_id),
            UpdateExpression=expression + " REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me",
            ExpressionAttributeValues=vals,
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            # Only a lease held past lease_seconds can be lost; size_dirty stays true for the next writer.
            raise errors.Retryable("The member update took too long; retry it") from exc
        raise translate(exc) from exc
    return int(from_item(result["Attributes"])["current_size"])


def release_lease(org_id: str, segment_id: str, *, owner: str, dirty: bool) -> None:
    """Give the lease back without committing (a failed request); `dirty` asks the next holder to recount."""
    try:
        client().update_item(
            TableName=table(),
            Key=segment_key(org_id, segment_id),
            UpdateExpression="SET size_dirty = :dirty REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me",
            ExpressionAttributeValues=values(dirty=dirty, me=owner),
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise translate(exc) from exc
