"""Make moto's DynamoDB behave as DynamoDB does where our invariants depend on it.

Atomic writes. moto evaluates a ConditionExpression and then applies the write without a lock,
and copies an item for UpdateItem's ReturnValues outside its backend call. Under threads that
lets two conditional writes both succeed - a race real DynamoDB never has. Writes, reads and
stream reads are serialised here by one lock, so no reader ever sees half a transaction.

Transactions undone in place. moto 5.2.5 rolls a failed TransactWriteItems back by deep-copying
every table it names before the first write and putting the copies in place of the tables when
one condition fails. The copy costs O(table size) per transaction, and the swap replaces the
table object - with it the stream shard, which every open shard iterator still points at: a
stream reader (the local stack's pollers, Lambda's event source mappings) then reads a shard
nothing is written to any more, and stops for good. Here a transaction never copies a table:
holding the lock, we keep a copy of each item it names and the length of each named table's
stream shard, and on any failure put those items back and drop the stream records the attempt
appended - in the same table and shard objects. moto's own rollback then restores a table onto
itself (its `copy.deepcopy` of a table is the table).

Long update expressions. moto parses `SET a = :a, b = :b, ...` into a tree as deep as the list
of actions, and its validator deep-copies that tree recursively: about 160 actions exhaust
Python's recursion limit (a profile near the documented 200 attributes failed with
RecursionError). The tree is copied here without recursion; the rest of moto's handling of it
holds far more actions than DynamoDB's 4 KB expression limit allows.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item")
_READS = ("get_item", "query", "scan")
_applied = False


class _CopyShim:
    """Stands in for the `copy` module inside moto.dynamodb.models: a table is never copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table):
            return value  # only transact_write_items copies tables; it is undone in place instead
        return copy.deepcopy(value, memo)


class _Undo:
    """What a transaction may change, as it was before it ran: its items and stream shard lengths."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        self.items: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, copy of the item or None)
        self.shards: dict[str, tuple[Any, int]] = {}  # table name -> (its shard, its length)
        seen: set[tuple[str, Any, Any]] = set()
        for entry in transact_items:
            for op_type, op in entry.items() if isinstance(entry, dict) else ():
                try:
                    table = backend.get_table(op["TableName"])  # a name or an ARN
                except Exception:  # nosec B112  # no such table: moto refuses it too
                    continue  # no such table: moto refuses the operation before it writes
                shard = table.stream_shard
                if table.name not in self.shards and shard is not None:
                    self.shards[table.name] = (shard, len(shard.items))
                key = op.get("Item") if op_type == "Put" else op.get("Key")
                try:
                    hash_key = DynamoType(key[table.hash_key_attr])
                    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                except Exception:  # nosec B112  # moto refuses it too
                    continue  # moto refuses such an operation before it writes anything
                ident = (table.name, hash_key, range_key)
                if ident in seen:
                    continue
                seen.add(ident)
                current = table.get_item(hash_key, range_key)
                self.items.append((table, hash_key, range_key, None if current is None else copy.deepcopy(current)))

    def apply(self) -> None:
        for table, hash_key, range_key, item in reversed(self.items):
            if range_key is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
                continue
            by_range = table.items.get(hash_key)
            if item is not None:
                table.items[hash_key][range_key] = item
            elif by_range is not None:
                by_range.pop(range_key, None)
                if not by_range:
                    del table.items[hash_key]
        for shard, length in self.shards.values():
            del shard.items[length:]


def _copy_tree(root: Any) -> Any:
    """A deep copy of a moto expression tree, made without recursion."""
    from moto.dynamodb.parsing.ast_nodes import Node

    if not isinstance(root, Node):
        return copy.deepcopy(root)
    clones: dict[int, Any] = {}
    order: list[Any] = []
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in clones:
            continue
        clones[id(node)] = copy.copy(node)
        order.append(node)
        pending.extend(child for child in node.children or () if isinstance(child, Node))

    def clone_of(value: Any) -> Any:
        return clones.get(id(value), value) if isinstance(value, Node) else copy.deepcopy(value)

    for node in order:
        clone = clones[id(node)]
        for name, value in vars(node).items():
            if name == "children":
                clone.children = None if value is None else [clone_of(child) for child in value]
            elif name == "parent":
                clone.parent = None if value is None else clones.get(id(value), value)
            else:
                setattr(clone, name, clone_of(value))
    return clones[id(root)]


def _locked(original: Any) -> Any:
    @functools.wraps(original)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(*args, **kwargs)

    return locked


def make_moto_atomic() -> None:
    """Patch moto's DynamoDB backend, handler and stream reads once per process (idempotent)."""
    global _applied
    if _applied:
        return
    import moto.dynamodb.models as models
    import moto.dynamodb.parsing.validators as validators
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    for name in (*_WRITES, *_READS):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
    for name in ("get_records", "get_shard_iterator", "describe_stream"):
        setattr(DynamoDBStreamsBackend, name, _locked(getattr(DynamoDBStreamsBackend, name)))

    original_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(original_transact)
    def transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with _LOCK:
            undo = _Undo(self, transact_items)
            try:
                return original_transact(self, transact_items)
            except BaseException:
                undo.apply()
                raise

    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    models.copy = _CopyShim()  # type: ignore[assignment]
    validators.deepcopy = _copy_tree  # type: ignore[attr-defined]

    # UpdateItem's ReturnValues copy happens in the handler, around the backend call.
    DynamoHandler.update_item = _locked(DynamoHandler.update_item)  # type: ignore[method-assign]
    _applied = True
