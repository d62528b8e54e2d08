"""Make moto's DynamoDB writes atomic (as DynamoDB's are) and its transactions cheap.

moto evaluates a ConditionExpression and then applies the write without a lock, copies an
item for UpdateItem's ReturnValues outside its backend call, and rolls a failed
TransactWriteItems back by restoring a deep copy of every table it touches. Under threads that
lets two conditional writes both succeed, or a rollback erase another thread's write - races
real DynamoDB never has. The tests and the local stack are about *our* invariants, so they run
moto with writes serialised by one lock.

The deep copy also makes every transaction cost O(table size) (a segment create after 100,000
member writes takes seconds, long enough for the SDK's read timeout to retry it). Holding the
lock, we can check a transaction's conditions first: when all of them hold, nothing will be
rolled back and moto is told to skip the copy; otherwise moto's own path runs unchanged and
reports the cancellation reasons as before.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item")
_applied = False
_skip_table_copies = False  # only ever true while _LOCK is held


class _CopyShim:
    """Stands in for the `copy` module inside moto.dynamodb.models."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if _skip_table_copies and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _will_succeed(backend: Any, transact_items: list[dict[str, Any]]) -> bool:
    """True when every condition of the transaction holds now and no item is named twice."""
    from moto.dynamodb.comparisons import get_filter_expression

    if len(transact_items) > 100:
        return False
    seen: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) != 1:
            return False
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            return False
        table_name = op["TableName"]
        if table_name not in backend.tables:
            return False
        table = backend.tables[table_name]
        if op_type == "Put":
            item = op["Item"]
            key = {table.hash_key_attr: item[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = item[table.range_key_attr]
        else:
            key = op["Key"]
        ident = (table_name, str(sorted(key.items())))
        if ident in seen:
            return False
        seen.add(ident)
        condition = op.get("ConditionExpression")
        if condition is not None:
            current = backend.get_item(table_name, key)
            expression = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not expression.expr(current):
                return False
    return True


def make_moto_atomic() -> None:
    """Patch moto's DynamoDB backend and handler once per process (idempotent)."""
    global _applied
    if _applied:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)

    original_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(original_transact)
    def transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        global _skip_table_copies
        with _LOCK:
            try:
                fast = _will_succeed(self, transact_items)
            except Exception:
                fast = False  # let moto report whatever is wrong, its own way
            _skip_table_copies = fast
            try:
                return original_transact(self, transact_items)
            finally:
                _skip_table_copies = False

    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    models.copy = _CopyShim()  # type: ignore[assignment]

    # UpdateItem's ReturnValues copy happens in the handler, around the backend call.
    original_update = DynamoHandler.update_item

    @functools.wraps(original_update)
    def update_item(self: Any) -> Any:
        with _LOCK:
            return original_update(self)

    DynamoHandler.update_item = update_item  # type: ignore[method-assign]
    _applied = True
