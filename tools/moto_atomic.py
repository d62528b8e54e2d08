"""Make moto's DynamoDB single-item writes and transactions atomic, as DynamoDB's are.

moto evaluates a ConditionExpression and then applies the write without a lock, and rolls a
failed TransactWriteItems back by restoring a copy of the whole table. Under threads that lets
two conditional writes both succeed, or a rollback erase another thread's write - races real
DynamoDB never has. The concurrency tests and the local stack are about *our* invariants, so
they run moto with writes serialised by one lock.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_applied = False


def make_moto_atomic() -> None:
    """Patch moto's DynamoDB backend once per process (idempotent)."""
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _applied = True
