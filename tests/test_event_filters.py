"""Lambda's event filtering subset (tools/local_stack/filters.py), on records shaped as Lambda sends them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.local_stack import filters


def ddb(event_name: str, sk: str, **new_image: Any) -> dict[str, Any]:
    return {
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": {"S": "SEG#1"}, "sk": {"S": sk}}, "NewImage": {"sk": {"S": sk}, **new_image}},
    }


LEDGER_INSERT = json.loads(  # as a template writes it
    '{"eventName": ["INSERT"], '
    '"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "SEG#"}]}, "sk": {"S": [{"prefix": "LOG#"}]}}}}'
)


def test_the_template_style_pattern() -> None:
    assert filters.matches(LEDGER_INSERT, ddb("INSERT", "LOG#2024#p-1"))
    assert not filters.matches(LEDGER_INSERT, ddb("MODIFY", "LOG#2024#p-1"))
    assert not filters.matches(LEDGER_INSERT, ddb("INSERT", "PID#p-1"))
    assert not filters.matches(LEDGER_INSERT, {"eventName": "INSERT"})  # missing keys: no match


def test_any_pattern_and_no_pattern() -> None:
    signals = {"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "SIG#"}]}}}}
    assert filters.matches_any([LEDGER_INSERT, signals], ddb("MODIFY", "SIG#death"))
    assert not filters.matches_any([LEDGER_INSERT, signals], ddb("MODIFY", "PID#x"))
    assert filters.matches_any([], ddb("REMOVE", "anything"))


@pytest.mark.parametrize(
    ("alternatives", "value", "expected"),
    [
        (["a", "b"], "b", True),
        (["a", "b"], "c", False),
        ([5], 5.0, True),
        (["5"], 5, False),  # a string is not a number
        ([True], True, True),
        ([True], 1, False),
        ([None], None, True),
        ([{"prefix": "LOG#"}], "LOG#1", True),
        ([{"prefix": "LOG#"}], "XLOG#1", False),
        ([{"prefix": {"equals-ignore-case": "log#"}}], "LOG#1", True),
        ([{"suffix": ".png"}], "a.png", True),
        ([{"equals-ignore-case": "death"}], "DEATH", True),
        ([{"anything-but": "death"}], "profile", True),
        ([{"anything-but": "death"}], "death", False),
        ([{"anything-but": ["a", "b"]}], "b", False),
        ([{"anything-but": {"prefix": "SIG#"}}], "LOG#1", True),
        ([{"anything-but": {"prefix": "SIG#"}}], "SIG#1", False),
        ([{"exists": True}], "x", True),
        ([{"numeric": [">", 0, "<=", 5]}], 5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 6, False),
        ([{"numeric": [">", 0]}], "3", False),
        (["b"], ["a", "b"], True),  # an array field matches when any element does
        (["c"], ["a", "b"], False),
    ],
)
def test_alternatives(alternatives: list[Any], value: Any, expected: bool) -> None:
    assert filters.matches({"f": alternatives}, {"f": value}) is expected


def test_exists_and_missing_fields() -> None:
    assert filters.matches({"f": [{"exists": False}]}, {})
    assert not filters.matches({"f": [{"exists": False}]}, {"f": "x"})
    assert not filters.matches({"f": [{"exists": True}]}, {})
    assert not filters.matches({"f": [{"anything-but": "x"}]}, {})  # anything-but needs the field
    assert filters.matches({"a": {"b": [{"exists": False}]}}, {})  # nested, absent all the way
    assert not filters.matches({"a": {"b": ["x"]}}, {"a": "not a map"})


def test_sqs_body_is_matched_as_json() -> None:
    record = {"messageId": "1", "body": json.dumps({"type": "death", "minerva_pid": "p-1"})}
    assert filters.matches({"body": {"type": ["death"]}}, filters.sqs_view(record))
    assert not filters.matches({"body": {"type": ["profile"]}}, filters.sqs_view(record))
    plain = {"messageId": "2", "body": "hello"}
    assert filters.matches({"body": ["hello"]}, filters.sqs_view(plain))
    assert not filters.matches({"body": {"type": ["death"]}}, filters.sqs_view(plain))


@pytest.mark.parametrize(
    "pattern",
    [
        ["not", "a map"],
        {"f": "bare value"},
        {"f": [{"cidr": "10.0.0.0/24"}]},
        {"f": [{"prefix": "a", "suffix": "b"}]},
        {"f": [{"numeric": [">>", 1]}]},
        {"f": [["nested"]]},
    ],
)
def test_unsupported_patterns_are_refused(pattern: Any) -> None:
    with pytest.raises(filters.InvalidPattern):
        filters.validate(pattern)


MIXED = {"f": [{"anything-but": {"prefix": "x"}}, {"numeric": ["<", 1]}, "plain", 3, None]}


@pytest.mark.parametrize(
    ("pattern", "hit", "miss"),
    [
        (LEDGER_INSERT, ddb("INSERT", "LOG#2024#p-1"), ddb("INSERT", "PID#p-1")),
        (MIXED, {"f": "y"}, {"f": "xy"}),
        (MIXED, {"f": 0.5}, {"f": "x"}),
        ({"a": {"b": [{"exists": True}]}}, {"a": {"b": 1}}, {"a": {}}),
    ],
)
def test_valid_patterns_pass_validation_and_filter_as_written(pattern: Any, hit: Any, miss: Any) -> None:
    filters.validate(pattern)  # accepted ...
    assert filters.matches(pattern, hit) and not filters.matches(pattern, miss)  # ... and evaluated as written
    # a nested object is validated too: the same pattern one level down, spoiled, is refused
    with pytest.raises(filters.InvalidPattern):
        filters.validate({"outer": {**pattern, "bad": [{"cidr": "10.0.0.0/24"}]}})
