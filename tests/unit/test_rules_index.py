"""Where a rule segment is filed in the org's rule index (`Definition.fields`, pure): under every
top-level field its rules read, and under ANY_FIELD (read on a record's first write) exactly when
its rules match a record lacking every field they read."""

from __future__ import annotations

from typing import Any

import pytest

from segments.store import keys
from segments.usecases.rule_definitions import Definition

ANY = keys.ANY_FIELD
DEAD = {"field": "deceased", "operator": "equals", "value": True}
GOLD = {"field": "tier", "operator": "equals", "value": "gold"}


def raw(tree: Any) -> dict[str, Any]:
    return {"field": "*", "operator": "raw", "value": tree}


def filed(rules: list[dict[str, Any]]) -> frozenset[str]:
    definition = Definition.of_segment(
        {"org_id": "org-a", "segment_id": "s-1", "segment_type": "dynamic", "rules": rules}
    )
    return definition.fields()


@pytest.mark.parametrize(
    ("rules", "fields"),
    [
        ([], {ANY}),
        ([GOLD], {"tier"}),
        ([{**DEAD, "operator": "not_equal_to"}], {"deceased", ANY}),
        ([{"field": "tags", "operator": "none_of", "value": ["lapsed"]}], {"tags", ANY}),
        ([raw({"not": DEAD})], {"deceased", ANY}),
        ([raw({"not": {"not": DEAD}})], {"deceased"}),
        ([raw({"any": [GOLD, {"not": DEAD}]})], {"tier", "deceased", ANY}),
        ([GOLD, {**DEAD, "operator": "not_equal_to"}], {"tier", "deceased"}),  # needs tier: never an empty record
        ([{"field": "location.city", "operator": "not_equal_to", "value": "York"}], {"location", ANY}),
        ([{"field": "age", "operator": "less_than", "value": 18}], {"age"}),  # a missing age is not < 18
        ([{"field": "x", "operator": "near", "value": "0,0,10"}], {"location"}),
    ],
)
def test_filed_under_its_fields_and_any_field_when_an_empty_record_matches(
    rules: list[dict[str, Any]], fields: set[str]
) -> None:
    assert filed(rules) == fields
