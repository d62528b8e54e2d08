"""Lambda's event filtering (FilterCriteria): the EventBridge pattern subset it uses.

A record is delivered when any one pattern matches it (no pattern: every record). A pattern is a
map; every key of it must match. A nested map matches the nested field; a list is a set of
alternatives (OR), and a field that is itself an array matches when any of its elements does.
Alternatives: a plain value (string, number, boolean, null: equality, numbers compared as
numbers), `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`, `{"anything-but": v}`
(v a value, a list of values, or `{"prefix": s}` / `{"suffix": s}`), `{"exists": true|false}`,
`{"numeric": [">", 0, "<=", 5]}`. A missing field matches only `{"exists": false}`.

Lambda matches the record it would send: for DynamoDB the Lambda-shaped stream record
(`eventName`, `dynamodb.Keys`, `dynamodb.NewImage` ...); for SQS the message record, with a
JSON `body` matched as parsed JSON (a body that is not JSON matches plain string values only).
Records that match no pattern are dropped, as Lambda drops them (deleted from a queue,
checkpointed past on a stream).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from typing import Any

_MISSING = object()
_NUMERIC = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge, ">": operator.gt}
_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "numeric"}


class InvalidPattern(ValueError):
    """A filter pattern outside the supported subset (the event source is not started)."""


def validate(pattern: Any) -> None:
    """Raise InvalidPattern for a pattern this module cannot evaluate faithfully."""
    if not isinstance(pattern, dict):
        raise InvalidPattern(f"a filter pattern is a JSON object, not {pattern!r}")
    for key, value in pattern.items():
        if isinstance(value, dict):
            validate(value)
        elif isinstance(value, list):
            for alternative in value:
                if isinstance(alternative, dict):
                    if len(alternative) != 1 or next(iter(alternative)) not in _OPERATORS:
                        raise InvalidPattern(f"unsupported filter operator at {key!r}: {alternative!r}")
                    if "numeric" in alternative:
                        _numeric_pairs(alternative["numeric"])
                elif isinstance(alternative, list):
                    raise InvalidPattern(f"nested list at {key!r}")
        else:
            raise InvalidPattern(f"the value at {key!r} must be an object or a list, not {value!r}")


def matches_any(patterns: Sequence[dict[str, Any]], record: dict[str, Any]) -> bool:
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    if not isinstance(event, dict):
        event = {}
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING)
        if isinstance(expected, dict):
            if not matches(expected, actual if isinstance(actual, dict) else {}):
                return False
        elif not _field_matches(expected, actual):
            return False
    return True


def _field_matches(alternatives: list[Any], actual: Any) -> bool:
    if actual is _MISSING:
        return any(isinstance(a, dict) and a.get("exists") is False for a in alternatives)
    values: Iterable[Any] = actual if isinstance(actual, list) else [actual]
    values = list(values)
    return any(_matches_one(alternative, value) for alternative in alternatives for value in values)


def _matches_one(alternative: Any, value: Any) -> bool:
    if not isinstance(alternative, dict):
        return _equal(alternative, value)
    ((name, arg),) = alternative.items()
    if name == "exists":
        return bool(arg)
    if name == "prefix":
        return isinstance(value, str) and _affix(arg, value, str.startswith)
    if name == "suffix":
        return isinstance(value, str) and _affix(arg, value, str.endswith)
    if name == "equals-ignore-case":
        return isinstance(value, str) and isinstance(arg, str) and value.casefold() == arg.casefold()
    if name == "anything-but":
        if isinstance(arg, dict):
            return not _matches_one(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_equal(item, value) for item in excluded)
    if name == "numeric":
        number = _number(value)
        return number is not None and all(_NUMERIC[op](number, bound) for op, bound in _numeric_pairs(arg))
    return False


def _affix(arg: Any, value: str, test: Any) -> bool:
    if isinstance(arg, dict) and "equals-ignore-case" in arg:
        return test(value.casefold(), str(arg["equals-ignore-case"]).casefold())
    return isinstance(arg, str) and test(value, arg)


def _numeric_pairs(arg: Any) -> list[tuple[str, float]]:
    if not isinstance(arg, list) or len(arg) not in (2, 4) or any(op not in _NUMERIC for op in arg[::2]):
        raise InvalidPattern(f"bad numeric filter {arg!r}")
    return [(op, float(bound)) for op, bound in zip(arg[::2], arg[1::2], strict=True)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _equal(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool) or expected is None or value is None:
        return expected is value or (expected == value and type(expected) is type(value))
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def sqs_view(record: dict[str, Any]) -> dict[str, Any]:
    """The SQS record as Lambda's filter sees it: a JSON object body parsed."""
    try:
        body = json.loads(record.get("body") or "")
    except ValueError:
        return record
    return {**record, "body": body} if isinstance(body, dict) else record
