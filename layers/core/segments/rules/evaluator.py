"""The rule evaluator (docs/api.md#rules): does a person record satisfy a segment's rules? Pure, no I/O.

`compile_rules` validates the rules once and turns each into a predicate with its value already
parsed (lists split, dates parsed, `near` read, strings case-folded); `matches` is a one-off use of
it. `fields_read` says which top-level attributes of a record the rules can read, so a change to
other attributes never needs a re-evaluation.

Semantics (docs/decisions.md, "Rules"):
- A field is read along its dotted path through objects; a path that meets a missing attribute,
  a null, or anything but an object on the way is *missing*.
- A field's value is seen as its *elements*: an array's elements, a scalar as itself alone, a
  missing field as none. A positive operator matches when some element does; `and_list` when every
  listed value is among the elements; `not_equal_to` is exactly `not equals`, `none_of` exactly
  `not or_list` (so a missing field is "not equal" to anything and holds "none of" any list).
- Types never mix: a number compares only with a number (int, float, Decimal; never a numeric
  string or a boolean), a string only with a string, a boolean only with a boolean. Dates compare
  only with ISO date/datetime strings. A mismatch is simply false, never an error.
"""

from __future__ import annotations

import datetime as dt
import operator as op
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segments.rules import values
from segments.rules.grammar import Rule, validate_rules

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
Rules = Sequence[Rule | Mapping[str, Any]]

_MISSING: Any = object()
_ARRAYS = (list, tuple, set, frozenset)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "greater_than": op.gt,
    "greater_than_or_equals": op.ge,
    "less_than": op.lt,
    "less_than_or_equals": op.le,
}
NEAR_FIELD = "location"


# ------------------------------------------------------------------ public API


def compile_rules(rules: Rules) -> Callable[[Record], bool]:
    """One predicate for a segment's rules (ANDed), every value parsed once. The rules are validated
    first (`errors.ValidationFailed` for a bad one, as `validate_rules`)."""
    predicates = tuple(_compile(rule) for rule in validate_rules(list(rules)))
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]

    def every(record: Record) -> bool:
        for predicate in predicates:
            if not predicate(record):
                return False
        return True

    return every


def matches(rules: Rules, record: Record) -> bool:
    """Whether `record` satisfies every rule. For many records, compile once with `compile_rules`."""
    return compile_rules(rules)(record)


def fields_read(rules: Rules) -> frozenset[str]:
    """The top-level attributes of a record the rules can read: the first name of each rule's
    path, through `raw` trees (whose own `field` is not read); `near` reads "location"."""
    found: set[str] = set()
    for rule in validate_rules(list(rules)):
        _collect(rule, found)
    return frozenset(found)


# ------------------------------------------------------------------ reading a record


def _always(record: Record) -> bool:
    return True


def _getter(path: str) -> Callable[[Record], Any]:
    """The value at a dotted path, or _MISSING (a null counts as missing)."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        name = parts[0]

        def top(record: Record) -> Any:
            value = record.get(name)
            return _MISSING if value is None else value

        return top

    def nested(record: Record) -> Any:
        node: Any = record
        for part in parts:
            if not isinstance(node, Mapping):
                return _MISSING
            node = node.get(part)
            if node is None:
                return _MISSING
        return node

    return nested


def _elements(value: Any) -> Any:
    """An array's elements, a scalar alone, nothing for a missing field."""
    if value is _MISSING:
        return ()
    if isinstance(value, _ARRAYS):
        return value
    return (value,)


# ------------------------------------------------------------------ element tests


def _equal_to(expected: Any, *, fold: bool) -> Callable[[Any], bool]:
    """An element test: equal to a rule's scalar (strings case-folded when `fold`)."""
    if isinstance(expected, str):
        if fold:
            folded = expected.casefold()
            return lambda e: isinstance(e, str) and e.casefold() == folded
        return lambda e: isinstance(e, str) and e == expected
    if isinstance(expected, bool):
        return lambda e: isinstance(e, bool) and e is expected
    n = values.number(expected)

    def same_number(e: Any) -> bool:
        m = values.number(e)
        return m is not None and m == n

    return same_number


def _member_of(items: list[Any]) -> Callable[[Any], bool]:
    """An element test: equal (as `equals`) to one of the listed values."""
    strings = frozenset(i.casefold() for i in items if isinstance(i, str))
    booleans = frozenset(i for i in items if isinstance(i, bool))
    numbers = frozenset(n for i in items if not isinstance(i, str | bool) and (n := values.number(i)) is not None)

    def test(e: Any) -> bool:
        if isinstance(e, str):
            return e.casefold() in strings
        if isinstance(e, bool):
            return e in booleans
        m = values.number(e)
        return m is not None and m in numbers  # ints and Decimals hash alike when equal

    return test


def _ordered(name: str, bound: Any) -> Callable[[Any], bool]:
    """An element test for a comparison: a number against a number, or a date/datetime against an
    ISO date/datetime string (a date rule compares UTC days; a datetime rule compares instants,
    a date element counting as its midnight UTC)."""
    compare = _ORDER[name]
    n = values.number(bound)
    if n is not None:

        def numeric(e: Any) -> bool:
            m = values.number(e)
            return m is not None and compare(m, n)

        return numeric
    moment = values.when(bound)
    if moment is None:  # validate_rules refuses it; never reached
        return lambda e: False
    convert: Callable[[values.When], Any] = values.as_datetime if isinstance(moment, dt.datetime) else values.as_date
    limit = convert(moment)

    def dated(e: Any) -> bool:
        w = values.when(e)
        return w is not None and compare(convert(w), limit)

    return dated


def _prefix(prefix: str, *, fold: bool) -> Callable[[Any], bool]:
    if fold:
        folded = prefix.casefold()
        return lambda e: isinstance(e, str) and e.casefold().startswith(folded)
    return lambda e: isinstance(e, str) and e.startswith(prefix)


# ------------------------------------------------------------------ compiling a rule


def _any_element(get: Callable[[Record], Any], test: Callable[[Any], bool], *, negate: bool = False) -> Predicate:
    def predicate(record: Record) -> bool:
        for e in _elements(get(record)):
            if test(e):
                return not negate
        return negate

    return predicate


def _compile(rule: Rule) -> Predicate:
    name, value = rule.operator, rule.value
    if name == "raw":
        return _compile_tree(value)
    if name == "near":
        return _near(value)
    get = _getter(rule.field)
    if name in ("equals", "not_equal_to"):
        return _any_element(get, _equal_to(value, fold=True), negate=name == "not_equal_to")
    if name == "exact":
        return _any_element(get, _equal_to(value, fold=False))
    if name in _ORDER:
        return _any_element(get, _ordered(name, value))
    if name in ("starts_with", "starts_with_case_insensitive"):
        return _any_element(get, _prefix(value, fold=name == "starts_with_case_insensitive"))
    items = values.listed(value) or []
    if name in ("or_list", "none_of"):
        return _any_element(get, _member_of(items), negate=name == "none_of")
    if name == "and_list":
        tests = [_member_of([item]) for item in items]

        def holds_all(record: Record) -> bool:
            found = _elements(get(record))
            return all(any(test(e) for e in found) for test in tests)

        return holds_all
    raise AssertionError(f"operator {name} has no evaluator")  # the grammar's Literal is exhaustive


def _near(value: str) -> Predicate:
    lat, lon, km = values.near(value) or (0.0, 0.0, -1.0)

    def within(record: Record) -> bool:
        where = record.get(NEAR_FIELD)
        if not isinstance(where, Mapping):
            return False
        here_lat, here_lon = values.coordinate(where.get("lat"), 90), values.coordinate(where.get("lon"), 180)
        if here_lat is None or here_lon is None:
            return False
        return values.distance_km(lat, lon, here_lat, here_lon) <= km

    return within


def _compile_tree(node: Mapping[str, Any]) -> Predicate:
    """A raw tree (already checked by the grammar) as one predicate."""
    if "field" in node:
        return _compile(Rule.model_validate(node))
    ((kind, inner),) = node.items()
    if kind == "not":
        child = _compile_tree(inner)
        return lambda record: not child(record)
    children = tuple(_compile_tree(c) for c in inner)
    if kind == "all":
        return lambda record: all(c(record) for c in children)
    return lambda record: any(c(record) for c in children)


def _collect(rule: Rule | Mapping[str, Any], found: set[str]) -> None:
    if isinstance(rule, Mapping):
        if "field" not in rule:  # a raw tree's all/any/not node
            ((_, inner),) = rule.items()
            for child in inner if isinstance(inner, list) else [inner]:
                _collect(child, found)
            return
        rule = Rule.model_validate(rule)
    if rule.operator == "raw":
        _collect(rule.value, found)
    elif rule.operator == "near":
        found.add(NEAR_FIELD)
    else:
        found.add(rule.field.split(".", 1)[0])
