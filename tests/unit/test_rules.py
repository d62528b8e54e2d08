"""The rule grammar (rules.py): plain rules and `raw` boolean trees of plain rules, never query strings."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segments.rules import RAW_MAX_DEPTH, Operator, Rule

AGE = {"field": "age", "operator": "greater_than", "value": 18}
CITY = {"field": "city", "operator": "equals", "value": "Leeds"}


def raw(tree: Any) -> dict[str, Any]:
    return {"field": "query", "operator": "raw", "value": tree}


def nots(levels: int) -> Any:
    tree: Any = AGE
    for _ in range(levels):
        tree = {"not": tree}
    return tree


def alls(levels: int) -> Any:
    tree: Any = AGE
    for i in range(levels):
        tree = {"all": [CITY, tree]} if i % 2 else {"any": [tree]}
    return tree


def test_the_depth_limit_is_ten_all_any_or_not_nodes() -> None:
    assert RAW_MAX_DEPTH == 10
    assert Rule.model_validate(raw(nots(10))).value == nots(10)
    assert "at most 10 levels" in refused(raw(nots(11)))


def refused(data: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(data)
    return str(caught.value)


VALID_VALUE = {
    "equals": "v",
    "exact": "v",
    "not_equal_to": "v",
    "greater_than": 1,
    "greater_than_or_equals": "2024-01-15",
    "less_than": "2024-01-15T10:30:45.123456Z",
    "less_than_or_equals": 1.5,
    "starts_with": "v",
    "starts_with_case_insensitive": "v",
    "or_list": "a,b",
    "and_list": ["a", 1],
    "none_of": [True],
    "near": "51.5,-0.12,10",
}


def test_every_operator_is_named_once() -> None:
    assert set(VALID_VALUE) | {"raw"} == set(get_args(Operator))


@pytest.mark.parametrize("operator", sorted(VALID_VALUE))
def test_every_plain_operator_is_accepted(operator: str) -> None:
    rule = Rule.model_validate({"field": "x", "operator": operator, "value": VALID_VALUE[operator]})
    assert rule.operator == operator and rule.value == VALID_VALUE[operator]


@pytest.mark.parametrize("value", ["s", "", 0, 1.5, True, False, -(10**30)])
def test_scalar_values_of_equality_are_accepted(value: Any) -> None:
    for operator in ("equals", "exact", "not_equal_to"):
        assert Rule.model_validate({**CITY, "operator": operator, "value": value}).value == value


@pytest.mark.parametrize(
    "data",
    [
        {**AGE, "operator": "like"},
        {**AGE, "operator": "RAW"},
        {**AGE, "extra": 1},
        {**AGE, "field": ""},
        {**AGE, "field": "f" * 201},
        {"operator": "equals", "value": 1},
        {**AGE, "value": {1, 2}},
        {**AGE, "value": b"bytes"},
        "age > 18",
        [AGE],
    ],
)
def test_malformed_rules_are_refused(data: Any) -> None:
    refused(data)


@pytest.mark.parametrize(
    "tree",
    [
        {"all": [AGE, CITY]},
        {"any": [AGE]},
        {"not": CITY},
        {"all": [{"any": [AGE, {"not": CITY}]}, {"not": {"all": [CITY]}}]},
        nots(RAW_MAX_DEPTH),
        alls(RAW_MAX_DEPTH),
    ],
)
def test_raw_trees_of_plain_rules_are_accepted(tree: Any) -> None:
    assert Rule.model_validate(raw(tree)).value == tree


@pytest.mark.parametrize(
    ("tree", "says"),
    [
        ("SELECT * FROM people WHERE age > 18", "raw value must be"),
        ({"all": [AGE], "any": [CITY]}, "raw value must be"),
        ({}, "raw value must be"),
        ({"xor": [AGE, CITY]}, 'unknown raw operator "xor"'),
        ({"all": []}, '"all" takes a non-empty list'),
        ({"any": []}, '"any" takes a non-empty list'),
        ({"any": AGE}, '"any" takes a non-empty list'),
        ({"all": [AGE, 5]}, "raw value must be"),
        ({"all": [AGE, "city = 'Leeds'"]}, "raw value must be"),
        ({"not": None}, "raw value must be"),
        ({"not": [AGE]}, "raw value must be"),
        ({"all": [raw({"not": AGE})]}, "not another raw rule"),
        ({"all": [{**AGE, "operator": "like"}]}, "invalid rule in raw tree"),
        ({"not": {"field": "", "operator": "equals"}}, "invalid rule in raw tree"),
        (nots(RAW_MAX_DEPTH + 1), f"raw rule trees may nest at most {RAW_MAX_DEPTH} levels"),
        (alls(RAW_MAX_DEPTH + 1), f"raw rule trees may nest at most {RAW_MAX_DEPTH} levels"),
        (nots(5_000), "value must take at most 16,384 bytes"),  # the size bound is met first
    ],
)
def test_malformed_raw_trees_are_refused(tree: Any, says: str) -> None:
    assert says in refused(raw(tree))


nodes = st.recursive(
    st.none()
    | st.integers()
    | st.text(max_size=10)
    | st.fixed_dictionaries(
        {
            "field": st.text(max_size=5),
            "operator": st.sampled_from([*get_args(Operator), "x"]),
            "value": st.none() | st.text(max_size=5),
        }
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["all", "any", "not", "field", "value", "x"]), inner, max_size=2)
    ),
    max_leaves=25,
)


@settings(derandomize=True, print_blob=True)  # the same examples every run; a failure prints its blob
@given(nodes)
def test_rule_validation_raises_nothing_but_validation_error(tree: Any) -> None:
    for data in (raw(tree), tree):
        try:
            Rule.model_validate(data)
        except ValidationError:
            pass
