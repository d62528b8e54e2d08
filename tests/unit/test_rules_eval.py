"""The rule evaluator (segments.rules): each operator's semantics on worked examples, the rule
values each operator refuses, and fields_read. Properties over generated rules live in
test_rules_properties.py."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from segments import errors
from segments.rules import compile_rules, fields_read, matches, validate_rules

PERSON: dict[str, Any] = {
    "name": "Ada Lovelace",
    "employer": "ACME Ltd",
    "age": 36,
    "score": Decimal("0.75"),
    "ratio": 0.1,
    "deceased": False,
    "visits": 0,
    "tags": ["VIP", "donor", 2024],
    "joined": "2024-01-15T10:30:45.123456Z",
    "born": "1815-12-10",
    "nickname": None,
    "location": {"country": "GB", "city": "London", "lat": Decimal("51.5074"), "lon": Decimal("-0.1278")},
}


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        # equals folds case, exact does not; both see an array's elements
        ("employer", "equals", "acme ltd", True),
        ("employer", "exact", "acme ltd", False),
        ("employer", "exact", "ACME Ltd", True),
        ("location.country", "equals", "gb", True),
        ("tags", "equals", "vip", True),
        ("tags", "exact", "vip", False),
        ("tags", "equals", 2024, True),
        ("name", "equals", "Ada", False),
        # types never mix
        ("age", "equals", 36, True),
        ("age", "equals", Decimal("36.0"), True),
        ("age", "equals", "36", False),
        ("tags", "equals", "2024", False),
        ("deceased", "equals", False, True),
        ("deceased", "equals", 0, False),
        ("deceased", "equals", "false", False),
        ("visits", "equals", False, False),
        ("visits", "exact", 0, True),
        ("ratio", "equals", 0.1, True),  # a float compares as its shortest decimal, as DynamoDB stores it
        ("ratio", "equals", Decimal("0.1"), True),
        # not_equal_to is `not equals`: a missing or null field is "not equal"
        ("employer", "not_equal_to", "acme ltd", False),
        ("employer", "not_equal_to", "Initech", True),
        ("tags", "not_equal_to", "donor", False),
        ("missing", "not_equal_to", "x", True),
        ("nickname", "not_equal_to", "x", True),
        ("missing", "equals", "x", False),
        # comparisons: numbers with numbers
        ("age", "greater_than", 35, True),
        ("age", "greater_than", 36, False),
        ("age", "greater_than_or_equals", 36, True),
        ("score", "less_than", 0.8, True),
        ("score", "less_than_or_equals", Decimal("0.75"), True),
        ("employer", "greater_than", 1, False),
        ("deceased", "less_than", 1, False),
        ("missing", "less_than", 1, False),
        # ... and dates with dates: a date rule compares UTC days, a datetime rule instants
        ("joined", "greater_than", "2024-01-14", True),
        ("joined", "greater_than", "2024-01-15", False),
        ("joined", "greater_than_or_equals", "2024-01-15", True),
        ("joined", "less_than", "2024-01-15T10:30:46Z", True),
        ("joined", "less_than", "2024-01-15T11:30:45+01:00", False),  # the same instant
        ("joined", "less_than_or_equals", "2024-01-15T11:30:45.123456+01:00", True),
        ("born", "less_than", "1900-01-01T00:00:00Z", True),
        ("born", "greater_than", "1815-12-09T23:59:59-01:00", False),  # 1815-12-10T00:59:59Z
        ("name", "greater_than", "2024-01-01", False),
        ("age", "greater_than", "2024-01-01", False),
        # prefixes
        ("name", "starts_with", "Ada", True),
        ("name", "starts_with", "ada", False),
        ("name", "starts_with_case_insensitive", "ada", True),
        ("tags", "starts_with", "do", True),
        ("age", "starts_with", "3", False),
        # lists: a comma-separated string or an array
        ("location.city", "or_list", "Paris, london", True),
        ("location.city", "or_list", ["Paris", "Rome"], False),
        ("tags", "or_list", "donor,member", True),
        ("age", "or_list", [35, 36], True),
        ("age", "or_list", "35,36", False),  # the items of a string are strings
        ("missing", "or_list", "a", False),
        ("tags", "and_list", ["vip", "donor"], True),
        ("tags", "and_list", "vip, member", False),
        ("employer", "and_list", ["acme ltd"], True),  # a scalar is an array of one
        ("missing", "and_list", ["x"], False),
        ("tags", "none_of", "member, lapsed", True),
        ("tags", "none_of", ["member", "VIP"], False),
        ("missing", "none_of", ["x"], True),
        # near: great-circle distance from location.lat/lon (London to Paris is ~344 km)
        ("location", "near", "51.5074,-0.1278,1", True),
        ("location", "near", "48.8566,2.3522,350", True),
        ("location", "near", "48.8566,2.3522,340", False),
        ("anything", "near", " 48.8566 , 2.3522 , 350 ", True),  # near always reads location
    ],
)
def test_operator_semantics(field: str, operator: str, value: Any, expected: bool) -> None:
    assert matches([rule(field, operator, value)], PERSON) is expected
    if operator in ("equals", "or_list"):
        negation = {"equals": "not_equal_to", "or_list": "none_of"}[operator]
        assert matches([rule(field, negation, value)], PERSON) is not expected


@pytest.mark.parametrize(
    "location",
    [
        None,
        "London",
        {"lat": "51.5", "lon": "-0.12"},
        {"lat": 91, "lon": 0},
        {"lat": 51.5},
        {"lat": True, "lon": 0},
        {"lat": 10**400, "lon": 0},
    ],
)
def test_near_never_matches_a_location_without_valid_coordinates(location: Any) -> None:
    assert not matches([rule("location", "near", "51.5,-0.12,20000")], {"location": location})


def test_rules_are_anded_and_an_empty_list_matches_everything() -> None:
    adult, brit = rule("age", "greater_than_or_equals", 18), rule("location.country", "equals", "GB")
    assert matches([adult, brit], PERSON)
    assert not matches([adult, brit], {**PERSON, "age": 17})
    assert matches([], {})


def test_raw_trees() -> None:
    tree = {
        "all": [
            rule("employer", "equals", "acme ltd"),
            {"not": rule("deceased", "equals", True)},
            {"any": [rule("age", "less_than", 18), rule("tags", "or_list", "vip")]},
        ]
    }
    raw = rule("*", "raw", tree)
    assert matches([raw], PERSON)
    assert not matches([raw], {**PERSON, "deceased": True})
    assert not matches([raw], {**PERSON, "tags": []})
    assert matches([raw], {**PERSON, "tags": [], "age": 12})


@pytest.mark.parametrize("record", [{}, {"location": "x"}, {"location": {"country": ["GB"]}}, {"name": {"a": 1}}])
def test_odd_records_never_raise_and_match_only_negative_rules(record: dict[str, Any]) -> None:
    """None of these records holds a value the rules compare with: every positive rule is false,
    and the negative one (none_of) true."""
    for operator, value in (
        ("equals", "x"),
        ("greater_than", 1),
        ("greater_than", "2024-01-01"),
        ("less_than_or_equals", 1),
        ("or_list", "a"),
        ("and_list", "a"),
        ("none_of", "a"),
        ("starts_with", "a"),
        ("near", "0,0,1"),
    ):
        for field in ("location.country", "name", "location.country.code"):
            assert matches([rule(field, operator, value)], record) is (operator == "none_of"), (operator, field)
            assert matches([rule(field, "not_equal_to", "x")], record)


# Each comparison at a bound below, equal to and above the value: a swapped or loosened operator
# (<= for >=, < for <=) gets one of the three wrong.
@pytest.mark.parametrize(
    ("operator", "below", "equal", "above"),
    [
        ("greater_than", True, False, False),
        ("greater_than_or_equals", True, True, False),
        ("less_than", False, False, True),
        ("less_than_or_equals", False, True, True),
    ],
)
@pytest.mark.parametrize(
    ("field", "bounds"),
    [
        ("age", (35, 36, 37)),
        ("score", (Decimal("0.74"), Decimal("0.75"), 0.76)),
        ("born", ("1815-12-09", "1815-12-10", "1815-12-11")),
        ("joined", ("2024-01-15T10:30:45Z", "2024-01-15T10:30:45.123456Z", "2024-01-15T11:30:46+01:00")),
    ],
)
def test_comparisons_at_each_side_of_the_bound(
    operator: str, below: bool, equal: bool, above: bool, field: str, bounds: tuple[Any, Any, Any]
) -> None:
    """`below`: the record's value is above a bound below it, and so on (the value is fixed)."""
    low, same, high = bounds
    got = tuple(matches([rule(field, operator, bound)], PERSON) for bound in (low, same, high))
    assert got == (below, equal, above)


def test_near_includes_its_bound_and_not_a_metre_more() -> None:
    """A record exactly `km` away matches (the bound is inclusive); half a kilometre inside
    matches, half a kilometre outside does not (a bound moved by 1 km either way fails here)."""
    from segments.rules.values import EARTH_RADIUS_KM, distance_km

    def north(km: float) -> dict[str, Any]:
        return {"location": {"lat": math.degrees(km / EARTH_RADIUS_KM), "lon": 0}}

    at = north(100)
    km = distance_km(0, 0, at["location"]["lat"], 0)
    assert abs(km - 100) < 1e-6
    near = [rule("location", "near", f"0,0,{km!r}")]
    assert matches(near, at)
    assert matches(near, north(99.5))
    assert not matches(near, north(100.5))
    assert not matches(near, north(100 + 1e-3))  # a metre out
    assert matches([rule("location", "near", "0,0,100.5")], north(100)) and not matches(
        [rule("location", "near", "0,0,99.5")], north(100)
    )


def test_compiled_rules_match_as_matches_does() -> None:
    rules = [rule("age", "greater_than", 30), rule("tags", "or_list", ["donor"])]
    compiled = compile_rules(rules)
    for record in (PERSON, {**PERSON, "age": 20}, {}):
        assert compiled(record) is matches(rules, record)


def test_fields_read_are_the_top_level_attributes_through_raw_trees() -> None:
    rules = [
        rule("location.country", "equals", "GB"),
        rule("x", "near", "0,0,1"),
        rule("*", "raw", {"any": [rule("age", "less_than", 1), {"not": rule("tags.kind", "equals", "a")}]}),
    ]
    assert fields_read(rules) == frozenset({"location", "age", "tags"})
    assert fields_read([rule("x", "near", "0,0,1")]) == frozenset({"location"})
    assert fields_read([]) == frozenset()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("not a list", "Invalid 'rules': must be a list of rules"),
        ([rule("a", "equals", "x")] * 101, "Invalid 'rules': at most 100 rules"),
        ([rule("a", "equals", "x"), "age > 1"], "Invalid 'rules.1'"),
        ([rule("a", "equals", "x"), {"operator": "equals", "value": 1}], "Invalid 'rules.1.field'"),
        ([rule("a b", "equals", 1)], "Invalid 'rules.0.field': field must be a dotted path"),
        ([rule("a..b", "equals", 1)], "Invalid 'rules.0.field'"),
        ([rule("1st", "equals", 1)], "Invalid 'rules.0.field'"),
        ([rule(".".join("abcdefghi"), "equals", 1)], "at most 8 nested attributes"),
        ([rule("a", "like", 1)], "Invalid 'rules.0.operator'"),
        ([rule("a", "equals", [1])], "Invalid 'rules.0.value': equals takes a string, number or boolean"),
        ([rule("a", "exact", None)], "exact takes a string, number or boolean"),
        ([rule("a", "not_equal_to", {"x": 1})], "not_equal_to takes"),
        ([rule("a", "greater_than", "18")], "send the number 18"),
        ([rule("a", "less_than", "yesterday")], "less_than takes a number, an ISO date"),
        ([rule("a", "less_than", "2024-02-30")], "less_than takes a number"),
        ([rule("a", "less_than", True)], "less_than takes a number"),
        ([rule("a", "greater_than", float("nan"))], "finite"),
        ([rule("a", "starts_with", "")], "starts_with takes a non-empty string"),
        ([rule("a", "starts_with_case_insensitive", 1)], "starts_with_case_insensitive takes a non-empty string"),
        ([rule("a", "or_list", [])], "or_list takes a non-empty list"),
        ([rule("a", "and_list", " , ")], "and_list takes a non-empty list"),
        ([rule("a", "none_of", [[1]])], "none_of takes a non-empty list"),
        ([rule("a", "near", "51.5,-0.12")], "Invalid 'rules.0.value': near takes \"lat,lon,km\""),
        ([rule("a", "near", "91,0,1")], "near takes"),
        ([rule("a", "near", "0,181,1")], "near takes"),
        ([rule("a", "near", "0,0,0")], "near takes"),
        ([rule("a", "near", "0,0,nan")], "near takes"),
        ([rule("a", "near", [51.5, 0, 1])], "near takes"),
        ([rule("*", "raw", "SELECT 1")], "Invalid 'rules.0.value': raw value must be"),
        (
            [rule("*", "raw", {"all": [rule("a", "near", "x")]})],
            "Invalid 'rules.0.value': invalid rule in raw tree at all.0.value: near takes",
        ),
    ],
)
def test_validate_rules_names_the_bad_rule(given: Any, says: str) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        validate_rules(given)
    assert says in caught.value.message
    with pytest.raises(errors.ValidationFailed):
        compile_rules(given if isinstance(given, list) else [given])


def test_validate_rules_returns_rules_with_storable_values() -> None:
    parsed = validate_rules([rule("a", "greater_than", 0.1), rule("*", "raw", {"not": rule("b", "or_list", [1.5])})])
    assert parsed[0].value == Decimal("0.1")
    assert parsed[1].value == {"not": rule("b", "or_list", [Decimal("1.5")])}
