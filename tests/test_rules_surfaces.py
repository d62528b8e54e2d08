"""Rules through the surfaces that accept them (the SheepCRM create and update; the Minerva create
takes a name and a description only): a raw tree at the depth limit is stored, one level deeper is
refused with a message that says the limit."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Api, Org
from segments.rules import RAW_MAX_DEPTH

AGE = {"field": "age", "operator": "greater_than", "value": 18}


def nested_nots(levels: int) -> list[dict[str, Any]]:
    tree: Any = AGE
    for _ in range(levels):
        tree = {"not": tree}
    return [{"field": "*", "operator": "raw", "value": tree}]


def create(api: Api, org: Org, name: str, rules: list[dict[str, Any]]) -> Any:
    body = {"name": name, "resource_type": "person", "segment_type": "dynamic", "rules": rules}
    return api.post(f"/segments/v2/{org.bucket}/create", bearer=org.key, body=body)


@pytest.mark.parametrize("surface", ["create", "update"])
def test_raw_trees_nest_at_most_ten_levels(api: Api, org: Org, surface: str) -> None:
    assert RAW_MAX_DEPTH == 10
    if surface == "create":
        ok = create(api, org, "ten", nested_nots(10))
        bad = create(api, org, "eleven", nested_nots(11))
    else:
        made = create(api, org, "changing", [AGE])
        assert made.status == 201, made.text
        path = f"/segments/v2/{org.bucket}/segment/{made.json['uid']}"
        ok = api.request("PUT", path, bearer=org.key, body={"rules": nested_nots(10)})
        bad = api.request("PUT", path, bearer=org.key, body={"rules": nested_nots(11)})
    assert ok.status in (200, 201), ok.text
    assert ok.json["rules"] == nested_nots(10)
    assert bad.status == 400, bad.text
    assert bad.json["type"] == "validation_error"
    assert "raw rule trees may nest at most 10 levels" in bad.json["description"]
    assert "rules.0.value" in bad.json["description"]
