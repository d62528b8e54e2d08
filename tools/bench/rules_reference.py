"""A slow, obvious interpreter of the rule semantics (docs/api.md#rules, docs/decisions.md "Rules").

The yardstick of `segments.rules`' evaluator: the property tests (tests/unit/test_rules_properties.py)
check that both always agree, and the `rules-eval` benchmark measures the evaluator against it.
It re-reads every rule for every record (nothing parsed ahead), compares numbers as exact
fractions, and imports nothing of the core. Rules are given as stored: valid dicts (numbers may
be Decimal).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

COMPARISONS = {
    "greater_than": lambda a, b: a > b,
    "greater_than_or_equals": lambda a, b: a >= b,
    "less_than": lambda a, b: a < b,
    "less_than_or_equals": lambda a, b: a <= b,
}


def matches(rules: list[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Every rule holds for the record."""
    return all(holds(rule, record) for rule in rules)


def holds(rule: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    operator, value = rule["operator"], rule["value"]
    if operator == "raw":
        return tree_holds(value, record)
    if operator == "near":
        return near_holds(value, record)
    elements = elements_of(lookup(record, rule["field"]))
    if operator == "equals":
        return any(same(e, value, fold=True) for e in elements)
    if operator == "not_equal_to":
        return not any(same(e, value, fold=True) for e in elements)
    if operator == "exact":
        return any(same(e, value, fold=False) for e in elements)
    if operator in COMPARISONS:
        return any(compares(e, value, COMPARISONS[operator]) for e in elements)
    if operator == "starts_with":
        return any(isinstance(e, str) and e.startswith(value) for e in elements)
    if operator == "starts_with_case_insensitive":
        return any(isinstance(e, str) and e.casefold().startswith(value.casefold()) for e in elements)
    if operator == "or_list":
        return any(same(e, v, fold=True) for e in elements for v in split(value))
    if operator == "none_of":
        return not any(same(e, v, fold=True) for e in elements for v in split(value))
    if operator == "and_list":
        return all(any(same(e, v, fold=True) for e in elements) for v in split(value))
    raise ValueError(f"unknown operator {operator}")


def tree_holds(node: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    if "field" in node:
        return holds(node, record)
    if "all" in node:
        return all(tree_holds(child, record) for child in node["all"])
    if "any" in node:
        return any(tree_holds(child, record) for child in node["any"])
    return not tree_holds(node["not"], record)


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path; None when missing (or null) anywhere on the way."""
    for name in path.split("."):
        if not isinstance(record, Mapping) or name not in record:
            return None
        record = record[name]
    return record


def elements_of(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def exact_number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float):
        return Fraction(Decimal(repr(value))) if math.isfinite(value) else None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    return Fraction(value)


def same(a: Any, b: Any, *, fold: bool) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold() if fold else a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    x, y = exact_number(a), exact_number(b)
    return x is not None and y is not None and x == y


def moment(text: Any) -> dt.date | dt.datetime | None:
    """A date for YYYY-MM-DD, a UTC datetime for an ISO datetime (no zone = UTC), else None."""
    if not isinstance(text, str):
        return None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            return dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        except ValueError:
            return None
    time = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    if not re.fullmatch(rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{time}(Z|[+-][0-9]{{2}}:[0-9]{{2}})?", text):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def compares(element: Any, bound: Any, compare: Any) -> bool:
    x, y = exact_number(element), exact_number(bound)
    if y is not None:
        return x is not None and compare(x, y)
    here, limit = moment(element), moment(bound)
    if here is None or limit is None:
        return False
    if isinstance(limit, dt.datetime):  # instants; a date is its midnight UTC
        if not isinstance(here, dt.datetime):
            here = dt.datetime.combine(here, dt.time(), tzinfo=dt.UTC)
        return bool(compare(here, limit))
    if isinstance(here, dt.datetime):  # days; a datetime is its UTC day
        here = here.date()
    return bool(compare(here, limit))


def split(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


def near_holds(value: str, record: Mapping[str, Any]) -> bool:
    lat, lon, km = (float(part) for part in value.split(","))
    where = record.get("location")
    if not isinstance(where, Mapping):
        return False
    here_lat, here_lon = exact_number(where.get("lat")), exact_number(where.get("lon"))
    if here_lat is None or here_lon is None or abs(here_lat) > 90 or abs(here_lon) > 180:
        return False
    return haversine_km(lat, lon, float(here_lat), float(here_lon)) <= km


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2, dp, dl = map(math.radians, (lat1, lat2, lat2 - lat1, lon2 - lon1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))
