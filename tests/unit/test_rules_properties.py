"""Properties of the rule evaluator (segments.rules), over generated rules and records:

(a) it agrees with a slow, obvious interpreter of the same semantics (tools/bench/rules_reference.py);
(b) `raw` trees obey De Morgan's laws and double negation, and the negative operators are the
    negations of the positive ones;
(c) `validate_rules` raises nothing but ValidationFailed, whatever it is given;
(d) a record changed outside `fields_read(rules)` never changes the result, and the evaluator
    reads no other top-level attribute.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segments import errors
from segments.rules import OPERATORS, Rule, compile_rules, fields_read, matches, validate_rules
from tools.bench import rules_reference as reference

# Derandomized: the same examples on every run, so a failure seen once is seen again; a failure
# also prints the blob that replays it (@reproduce_failure).
RULES = settings(
    max_examples=60, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)

# ------------------------------------------------------------------ records

WORDS = ["ab", "AB", "Ab", "abc", "b", "ß", "SS", "ss", "", "acme", "ACME Ltd", "12", "true"]
DATES = [
    "2024-01-15",
    "2024-01-16",
    "2023-12-31",
    "2024-01-15T00:00:00Z",
    "2024-01-15T23:30:00-01:00",
    "2024-01-15T10:30:45.123456",
    "2024-01-15T10:30:45.123456+02:00",
]
NOT_DATES = ["2024-02-30", "2024-01-15 10:30", "2024-1-15"]  # strings, never dates

words = st.sampled_from(WORDS)
numbers = (
    st.integers(-3, 20)
    | st.sampled_from([0.1, 0.5, 1.0, 2.5, -1.5, 10**30])
    | st.sampled_from([Decimal("0.1"), Decimal("2.50"), Decimal(18), Decimal("1E+2")])
)
dates = st.sampled_from(DATES)


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` three times in four, else `other` (`|` would flatten both into equal branches)."""
    return st.integers(0, 3).flatmap(lambda i: usual if i else other)


# Places 0 to ~3,500 km apart; a record is at one of them, give or take ~50 km.
PLACES = [(51.5, -0.12), (48.85, 2.35), (53.8, -1.55), (40.4, -3.7), (55.75, 37.6), (0, 0), (-33.9, 151.2)]
places = st.sampled_from(PLACES)
nudges = st.floats(-0.5, 0.5)
coordinates = st.builds(
    lambda place, dlat, dlon, country: {"lat": place[0] + dlat, "lon": place[1] + dlon, "country": country},
    places,
    nudges,
    nudges,
    words,
)

# Records are drawn from pools (cheap to generate): each attribute mostly holds its usual type,
# sometimes something odd (mismatches must be false, not errors) or nothing at all.
ABSENT = object()
NUMBERS = [
    -3,
    0,
    1,
    2,
    5,
    12,
    18,
    20,
    0.1,
    0.5,
    1.0,
    2.5,
    -1.5,
    10**30,
    Decimal("0.1"),
    Decimal("2.50"),
    Decimal(18),
    Decimal("1E+2"),
]
ODD = [None, True, 7, "12", "2024-02-30", ["ab", 1], {"x": 1}, ABSENT]
USUAL: dict[str, list[Any]] = {
    "name": WORDS,
    "age": NUMBERS,
    "score": NUMBERS,
    "joined": DATES + NOT_DATES,
    "active": [True, False],
    "tags": [
        [],
        ["ab"],
        ["AB", "acme"],
        ["ß", "b", 12],
        ["ss", True],
        ("acme", "x"),
        {"ab", "b"},
        ["2024-01-16", "2023-12-31"],
        [0.1, Decimal(18), "ACME Ltd"],
    ],
    "other": WORDS[:3] + NUMBERS[:3],
}


def pool(usual: list[Any]) -> st.SearchStrategy[Any]:
    """One of `usual` about three times in four, else one of ODD."""
    return st.sampled_from(usual * (1 + 3 * len(ODD) // len(usual)) + ODD)


odd_places = st.sampled_from(
    [*ODD, {"lat": 91, "lon": 0}, {"lat": "51.5", "lon": "0"}, {"lat": Decimal("51.5"), "lon": 0}, {"lat": 51.5}]
)
records = st.fixed_dictionaries(
    {**{name: pool(usual) for name, usual in USUAL.items()}, "location": mostly(coordinates, odd_places)}
).map(lambda record: {k: v for k, v in record.items() if v is not ABSENT})

# ------------------------------------------------------------------ rules

FIELDS = [
    "name",
    "age",
    "tags",
    "joined",
    "score",
    "active",
    "location.country",
    "location.lat",
    "missing",
    "name.inner",
]
ORDERED = ["age", "score", "joined", "joined", "location.lat"]
FIELDS_OF = {
    "equals": ["name", "tags", "active", "age", "location.country"],
    "exact": ["name", "tags", "location.country"],
    "not_equal_to": ["name", "tags", "active", "age"],
    "greater_than": ORDERED,
    "greater_than_or_equals": ORDERED,
    "less_than": ORDERED,
    "less_than_or_equals": ORDERED,
    "starts_with": ["name", "tags"],
    "starts_with_case_insensitive": ["name", "tags"],
    "or_list": ["name", "tags", "age"],
    "and_list": ["tags"],
    "none_of": ["name", "tags"],
    "near": ["location"],
}
LIST_ITEMS = words | numbers | st.booleans()


def field_for(operator: str) -> st.SearchStrategy[str]:
    """Mostly a field the operator suits, sometimes any (a missing one, a mismatched type)."""
    return mostly(st.sampled_from(FIELDS_OF[operator]), st.sampled_from(FIELDS))


SCALAR_OF: dict[str, st.SearchStrategy[Any]] = {
    "name": words,
    "tags": words,
    "location.country": words,
    "active": st.booleans(),
    "age": numbers,
    "score": numbers,
    "location.lat": numbers,
    "joined": dates,
}
any_scalar = words | numbers | st.booleans() | dates


def value_for(operator: str, field: str) -> st.SearchStrategy[Any]:
    """A valid value of the operator, mostly of the type the field usually holds."""
    usual = SCALAR_OF.get(field, any_scalar)
    if operator in ("equals", "exact", "not_equal_to"):
        return mostly(usual, any_scalar)
    if operator in ("greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"):
        return mostly(dates if field == "joined" else numbers, numbers | dates)
    if operator in ("starts_with", "starts_with_case_insensitive"):
        return st.sampled_from(["a", "A", "ab", "s", "S", "ß", "1", "20", "AC"])
    if operator in ("or_list", "and_list", "none_of"):
        commas = st.lists(st.sampled_from(["ab", "AB", "b", "acme", "12", "x"]), min_size=1, max_size=3)
        return st.lists(mostly(usual, any_scalar), min_size=1, max_size=3) | commas.map(", ".join)
    assert operator == "near"
    return st.builds(
        lambda place, km: f"{place[0]},{place[1]},{km}", places, st.sampled_from([1, 30, 60, 350, 500, 1000, 5000])
    )


PLAIN = [o for o in OPERATORS if o != "raw"]


@st.composite
def plain_rules(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(PLAIN))
    field = draw(field_for(operator))
    return {"field": field, "operator": operator, "value": draw(value_for(operator, field))}


trees = st.recursive(
    plain_rules(),
    lambda inner: (
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda x: {"not": x}, inner)
    ),
    max_leaves=6,
)
raw_rules = st.builds(
    lambda tree: {"field": "*", "operator": "raw", "value": tree}, trees.filter(lambda t: "field" not in t)
)
rule_lists = st.lists(plain_rules() | raw_rules, max_size=3)


def stored(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules as a segment stores them (validated: numbers as Decimal)."""
    return [rule.model_dump() for rule in validate_rules(rules)]


def raw(tree: Any) -> dict[str, Any]:
    return {"field": "*", "operator": "raw", "value": tree}


# ------------------------------------------------------------------ (a) the reference


@RULES
@given(rule_lists, st.lists(records, min_size=1, max_size=5))
def test_the_evaluator_agrees_with_the_reference(rules: list[dict[str, Any]], batch: list[dict[str, Any]]) -> None:
    compiled = compile_rules(rules)
    for record in batch:
        expected = reference.matches(stored(rules), record)
        assert compiled(record) is expected, (rules, record)
        assert matches(rules, record) is expected


@pytest.mark.parametrize("operator", PLAIN)
@settings(RULES, max_examples=30)
@given(data=st.data(), batch=st.lists(records, min_size=6, max_size=12))
def test_each_operator_agrees_with_the_reference(
    operator: str, data: st.DataObject, batch: list[dict[str, Any]]
) -> None:
    field = data.draw(field_for(operator))
    rule = {"field": field, "operator": operator, "value": data.draw(value_for(operator, field))}
    compiled, as_stored = compile_rules([rule]), stored([rule])[0]
    for record in batch:
        assert compiled(record) is reference.holds(as_stored, record), (rule, record)


# ------------------------------------------------------------------ (b) De Morgan and negations

leaves = plain_rules()


@RULES
@given(leaves, leaves, records)
def test_raw_trees_obey_de_morgan(a: dict[str, Any], b: dict[str, Any], record: dict[str, Any]) -> None:
    def holds(tree: Any) -> bool:
        return matches([raw(tree)], record)

    assert holds({"not": {"all": [a, b]}}) == holds({"any": [{"not": a}, {"not": b}]})
    assert holds({"not": {"any": [a, b]}}) == holds({"all": [{"not": a}, {"not": b}]})
    assert holds({"not": {"not": a}}) == matches([a], record)
    assert holds({"all": [a, b]}) == matches([a, b], record) == (matches([a], record) and matches([b], record))
    assert holds({"any": [a, b]}) == (matches([a], record) or matches([b], record))
    assert holds({"not": a}) != matches([a], record)


@RULES
@given(st.sampled_from(FIELDS), st.data(), records)
def test_negative_operators_negate_the_positive_ones(field: str, data: st.DataObject, record: dict[str, Any]) -> None:
    scalar = data.draw(value_for("equals", field))
    listed = data.draw(value_for("or_list", field))
    equals = {"field": field, "operator": "equals", "value": scalar}
    or_list = {"field": field, "operator": "or_list", "value": listed}
    assert matches([{**equals, "operator": "not_equal_to"}], record) != matches([equals], record)
    assert matches([{**or_list, "operator": "none_of"}], record) != matches([or_list], record)
    assert matches([{**equals, "operator": "not_equal_to"}], record) == matches([raw({"not": equals})], record)


# ------------------------------------------------------------------ (c) validation never crashes

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=12)
    | st.sampled_from([*OPERATORS, *DATES, "1,2,3", "91,0,1", "0,0,0", "0,0,-1", "a.b"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["field", "operator", "value", "all", "any", "not", "x", ""])
            | st.text(string.ascii_letters, max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)
mutated_rules = st.fixed_dictionaries(
    {
        "field": st.sampled_from(["a", "a.b", "*", "", "a..b", "1a", "a" * 300, ".".join("a" * 9)]) | json_like,
        "operator": st.sampled_from(OPERATORS) | json_like,
        "value": json_like,
    },
)


anything = (
    json_like
    | st.lists(mutated_rules | json_like, max_size=4)
    | st.lists(mutated_rules, min_size=1, max_size=3).map(lambda rs: [raw({"any": rs})])
)


@settings(RULES, max_examples=150)
@given(anything)
def test_validate_rules_raises_nothing_but_validation_failed(given_rules: Any) -> None:
    try:
        parsed = validate_rules(given_rules)
    except errors.ValidationFailed as exc:
        assert exc.message.startswith("Invalid 'rules")
        return
    assert all(isinstance(rule, Rule) for rule in parsed)
    compile_rules(parsed)({})  # what validates also compiles and evaluates


# ------------------------------------------------------------------ (d) fields_read


class Tracking(Mapping[str, Any]):
    """A record that notes every top-level attribute read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data, self.read = data, set[str]()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the evaluator never needs to list a record's attributes")

    def __len__(self) -> int:
        return len(self.data)


@RULES
@given(rule_lists, records, records)
def test_a_change_outside_fields_read_never_changes_the_result(
    rules: list[dict[str, Any]], record: dict[str, Any], other: dict[str, Any]
) -> None:
    read = fields_read(rules)
    changed = {k: v for k, v in record.items() if k in read} | {k: v for k, v in other.items() if k not in read}
    assume(changed != record)
    assert matches(rules, changed) == matches(rules, record)


@RULES
@given(rule_lists, records)
def test_the_evaluator_reads_nothing_but_fields_read(rules: list[dict[str, Any]], record: dict[str, Any]) -> None:
    tracked = Tracking(record)
    assert compile_rules(rules)(tracked) == matches(rules, record)
    assert tracked.read <= fields_read(rules)
