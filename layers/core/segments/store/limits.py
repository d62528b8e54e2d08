"""What DynamoDB can store, checked before anything is written (pure, no I/O).

DynamoDB refuses, with a ValidationException that would otherwise surface as a 500 (or, worse, an
item written by an emulator that real DynamoDB could never read back), values that:

- hold a number with more than 38 significant digits, or outside 1E-130 .. 9.99..E+125 in
  magnitude, or that is not finite (NaN, Infinity); boto3 refuses every Python float outright;
- hold a map with an empty key;
- nest lists and maps more than 32 levels deep;
- make an item over 400 KB.

`storable()` walks a value once, iteratively (no recursion, whatever the depth), converts numbers
to `Decimal` exactly (an int as is; a float by its shortest round-tripping decimal, `repr`, so
0.1 is stored as 0.1) and raises `LimitExceeded` naming the offending field. `item_size()`
estimates an item's size the way DynamoDB counts it (attribute names plus values, in UTF-8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MAX_DIGITS = 38  # significant digits of a DynamoDB number
MIN_EXPONENT = -130  # smallest magnitude: 1E-130
MAX_EXPONENT = 125  # largest magnitude: 9.9999999999999999999999999999999999999E+125
MAX_DEPTH = 32  # nested lists and maps
MAX_ITEM_BYTES = 400 * 1024
# What storage adds to a segment's own fields: keys, index keys, the name key (at most 1,024
# bytes), identity, times, size and state. Generous, so a segment that passes always fits.
ITEM_OVERHEAD_BYTES = 4 * 1024
RANGE = (
    f"numbers must be finite (no NaN or Infinity) and between 1E{MIN_EXPONENT} and 9.99E+{MAX_EXPONENT} in magnitude"
)


class LimitExceeded(ValueError):
    """A value DynamoDB cannot store; `field` is the dotted path to it, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def describe(self) -> str:
        """For a caller: "Invalid '<field>': <why>" (or just why, for the whole item)."""
        return f"Invalid '{self.field}': {self.message}" if self.field else self.message


def _path(parent: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{parent}[{part}]"
    return f"{parent}.{part}" if parent else part


def number(value: int | float | Decimal, field: str = "value") -> Decimal:
    """`value` as the Decimal DynamoDB stores, trailing zeros dropped; LimitExceeded when DynamoDB
    cannot hold it exactly."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LimitExceeded(field, RANGE)
        d = Decimal(repr(value))
    else:
        d = Decimal(value)
        if not d.is_finite():
            raise LimitExceeded(field, RANGE)
    if d.is_zero():
        return Decimal(0)
    sign, digits, exponent = d.as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    exponent = int(exponent) + len(digits) - len(text)
    if len(text) > MAX_DIGITS:
        raise LimitExceeded(field, f"numbers may have at most {MAX_DIGITS} significant digits")
    magnitude = exponent + len(text) - 1
    if not MIN_EXPONENT <= magnitude <= MAX_EXPONENT:
        raise LimitExceeded(field, RANGE)
    return Decimal((sign, tuple(int(c) for c in text), exponent))


def storable(value: Any, field: str) -> Any:
    """A copy of `value` that DynamoDB can store (numbers as Decimal), or LimitExceeded naming the
    first field it cannot. Accepts JSON-like values: None, bool, str, numbers, lists, maps with
    string keys."""
    root: list[Any] = [None]
    # (value, where to put its copy: container and index/key, its path, its depth in containers)
    stack: list[tuple[Any, Any, Any, str, int]] = [(value, root, 0, field, 0)]
    while stack:
        node, parent, slot, path, depth = stack.pop()
        if node is None or isinstance(node, bool | str):
            parent[slot] = node
        elif isinstance(node, int | float | Decimal):
            parent[slot] = number(node, path)
        elif isinstance(node, list | tuple | Mapping):
            if depth + 1 > MAX_DEPTH:
                raise LimitExceeded(path, f"lists and objects may nest at most {MAX_DEPTH} levels")
            if isinstance(node, Mapping):
                copy: dict[str, Any] = {}
                parent[slot] = copy
                for key, child in node.items():
                    if not isinstance(key, str) or not key:
                        raise LimitExceeded(_path(path, str(key)), "object keys must be non-empty strings")
                    copy[key] = None
                    stack.append((child, copy, key, _path(path, key), depth + 1))
            else:
                items: list[Any] = [None] * len(node)
                parent[slot] = items
                for i, child in enumerate(node):
                    stack.append((child, items, i, _path(path, i), depth + 1))
        else:
            raise LimitExceeded(path, f"values of type {type(node).__name__} cannot be stored")
    return root[0]


def _number_size(value: Any) -> int:
    # DynamoDB: about one byte per two significant digits, plus one; at most 21 bytes.
    digits = len(Decimal(value).as_tuple().digits) if not isinstance(value, bool) else 1
    return min(21, (digits + 1) // 2 + 1)


def value_size(value: Any) -> int:
    """DynamoDB's size of one attribute value, in bytes (iterative)."""
    total = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, bool):
            total += 1
        elif isinstance(node, str):
            total += len(node.encode("utf-8", "surrogatepass"))
        elif isinstance(node, bytes):
            total += len(node)
        elif isinstance(node, int | float | Decimal):
            total += _number_size(node)
        elif isinstance(node, Mapping):
            total += 3 + len(node)
            for key, child in node.items():
                total += len(str(key).encode("utf-8", "surrogatepass"))
                stack.append(child)
        elif isinstance(node, list | tuple | set | frozenset):
            total += 3 + len(node)
            stack.extend(node)
        else:
            total += len(str(node).encode("utf-8", "surrogatepass"))
    return total


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item: its attribute names plus their values (None values are not stored)."""
    return sum(len(k.encode("utf-8", "surrogatepass")) + value_size(v) for k, v in item.items() if v is not None)


def check_item(item: Mapping[str, Any], *, overhead: int = ITEM_OVERHEAD_BYTES, what: str = "The item") -> None:
    """LimitExceeded when `item` (plus `overhead` bytes that storage adds) is over 400 KB."""
    size = item_size(item) + overhead
    if size > MAX_ITEM_BYTES:
        raise LimitExceeded("", f"{what} would take {size:,} bytes; at most {MAX_ITEM_BYTES:,} (400 KB) can be stored")


def plain(value: Any) -> Any:
    """Decimals back to int (or float when fractional), recursively: numbers as a reader sees them."""
    stack: list[tuple[Any, Any, Any]] = []
    root: list[Any] = [value]
    stack.append((root, 0, value))
    while stack:
        parent, slot, node = stack.pop()
        if isinstance(node, Decimal):
            parent[slot] = int(node) if node == node.to_integral_value() else float(node)
        elif isinstance(node, Mapping):
            copy = dict(node)
            parent[slot] = copy
            stack.extend((copy, k, v) for k, v in copy.items())
        elif isinstance(node, list | tuple):
            items = list(node)
            parent[slot] = items
            stack.extend((items, i, v) for i, v in enumerate(items))
    return root[0]
