"""Live rule membership against a full evaluation: after a random stream of profile changes (new
records and changes, fields set, changed and nulled), every rule segment's members — kept by the
live path alone for segments that existed before the stream, by a rebuild then the live path for
one created midway — are exactly the records its rules match now. Negative operators included.

Derandomized (the same examples on every run); a failure prints the example (not shrunk: each
run drives the stream and the rebuild queue) and the blob that replays it (@reproduce_failure)."""

from __future__ import annotations

import itertools
from typing import Any

from helpers.rules import Rig, members_of, profile, rig_fixture, segment, sheep_segment  # noqa: F401 - `rig`
from helpers.signals import ingest, signals_fixture  # noqa: F401 - the `signals` fixture
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import Api, make_org
from segments.rules import matches
from segments.store import signals as signal_store
from segments.usecases.rule_definitions import person

PIDS = ["p-q1", "p-q2", "p-q3", "p-q4"]
VALUES: dict[str, list[Any]] = {
    "tier": ["gold", "Gold", "silver", None],
    "deceased": [True, False, None],
    "tags": [["vip"], ["lapsed"], ["vip", "lapsed"], [], None],
    "age": [17, 18, 40, None],
}
FIELDS = sorted(VALUES)

plain = st.sampled_from(
    [
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "tier", "operator": "not_equal_to", "value": "gold"},
        {"field": "deceased", "operator": "not_equal_to", "value": True},
        {"field": "deceased", "operator": "equals", "value": True},
        {"field": "tags", "operator": "none_of", "value": ["lapsed"]},
        {"field": "tags", "operator": "or_list", "value": "vip, lapsed"},
        {"field": "tags", "operator": "and_list", "value": ["vip", "lapsed"]},
        {"field": "age", "operator": "greater_than_or_equals", "value": 18},
        {"field": "age", "operator": "less_than", "value": 18},
    ]
)
trees = st.recursive(
    plain,
    lambda inner: (
        st.builds(lambda x: {"not": x}, inner)
        | st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=2))
        | st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=2))
    ),
    max_leaves=3,
)
raw = trees.filter(lambda t: "field" not in t).map(lambda t: {"field": "*", "operator": "raw", "value": t})
rule_lists = st.lists(plain | raw, max_size=2)
changes = st.tuples(
    st.sampled_from(PIDS),
    st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 4), min_size=1, max_size=3).map(
        lambda picks: {name: VALUES[name][i % len(VALUES[name])] for name, i in picks.items()}
    ),
)
orgs = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: a failing stack run shrinks for minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.lists(rule_lists, min_size=1, max_size=3),
    midway=rule_lists,
    stream=st.lists(changes, min_size=1, max_size=10),
    split=st.integers(0, 10),
)
def test_live_membership_is_a_full_evaluation_of_the_records(
    api: Api, rig: Rig, before: list[Any], midway: list[Any], stream: list[Any], split: int
) -> None:
    name = f"org-prop{next(orgs)}"
    org = make_org(name, name)
    defined = [(rules, sheep_segment(api, org, f"S{i}", rules=rules)) for i, rules in enumerate(before)]
    rig.settle()
    for n, (pid, attributes) in enumerate(stream):
        if n == split:
            defined.append((midway, sheep_segment(api, org, "Midway", rules=midway)))
        result = ingest(profile(pid, org, attributes, observed_at=f"2024-03-01T00:00:{n:02d}.000000Z"))
        assert result["batchItemFailures"] == []
        if n % 3 == 2:
            rig.settle()
    rig.settle()
    records = {pid: signal_store.person(org.org_id, pid) for pid in PIDS}
    for rules, segment_id in defined:
        expected = sorted(p for p, r in records.items() if r is not None and matches(rules, person(r)))
        assert members_of(api, org, segment_id) == expected, (rules, records)
        assert segment(api, org, segment_id)["current_size"] == len(expected)
