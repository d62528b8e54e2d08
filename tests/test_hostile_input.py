"""Hostile input through API Gateway (the `api` fixture): numbers DynamoDB can't hold, values it
can't store, keys over its limits, oversized creates, bodies that are not safe JSON or not UTF-8,
forged cursors and invisible characters in names. A 5xx for any of them is a bug.

Limits enforced here are listed in docs/limits.md.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Api, Org
from segments import cursors
from segments.models import NewSegment, name_key, storable_segment
from segments.rules import RAW_MAX_DEPTH
from segments.store import dynamo
from segments.store import segments as segment_store

REQ_ID = re.compile(r"^req_[0-9a-f]{32}$")


# ------------------------------------------------------------------ helpers


def sheep_path(org: Org) -> str:
    return f"/segments/v2/{org.bucket}/create"


def minerva_error(resp: Any, status: int = 422) -> str:
    assert resp.status == status, resp.text
    body = resp.json
    assert set(body) <= {"error", "status_code", "api_request_id", "details"}
    assert body["status_code"] == status and REQ_ID.match(body["api_request_id"])
    return str(body["error"])


def sheep_error(resp: Any, status: int = 400, kind: str = "validation_error") -> str:
    assert resp.status == status, resp.text
    body = resp.json
    assert set(body) == {"error", "description", "type"} and body["type"] == kind
    return str(body["description"])


def sheep_create(api: Api, org: Org, **fields: Any) -> Any:
    return api.post(sheep_path(org), bearer=org.key, body={"resource_type": "person", **fields})


def rule_body(value_json: str, name: str = "Scores") -> str:
    """A SheepCRM create body with one rule whose value is the raw JSON text `value_json`."""
    return (
        '{"name": ' + json.dumps(name) + ', "resource_type": "person", "rules": [{"field": "score", '
        '"operator": "greater_than", "value": ' + value_json + "}]}"
    )


def segment_id_of(created: Any) -> str:
    return str(uuid.UUID(created.json["uid"]))


def read_back(api: Api, org: Org, segment_id: str) -> dict[str, Any]:
    resp = api.get(f"/v2/segments/{segment_id}", key=org.key)
    assert resp.status == 200, resp.text
    return dict(resp.json)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# ------------------------------------------------------------------ 1. numbers


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("0.5", 0.5),
        ("-1.25e-7", -1.25e-7),
        ("0.1", 0.1),
        ("12345678901234567890123456789012345678", 12345678901234567890123456789012345678),  # 38 digits
        ("1e125", 10**125),
        ("1e-130", 1e-130),
        ("100000000000000000000000000000000000000000000000000", 10**50),  # 51 digits, 1 significant
    ],
)
def test_numbers_in_rule_values_are_stored_and_read_back_as_numbers(
    api: Api, org: Org, literal: str, expected: Any
) -> None:
    created = api.post(sheep_path(org), bearer=org.key, body=rule_body(literal))
    assert created.status == 201, created.text
    assert created.json["rules"][0]["value"] == expected
    # rendered as a JSON number, not a string
    assert isinstance(created.json["rules"][0]["value"], int | float)
    segment = read_back(api, org, segment_id_of(created))
    assert segment["rules"][0]["value"] == expected
    listed = api.get("/v2/segments", key=org.key)
    assert listed.status == 200 and listed.json["results"]["items"][0]["rules"][0]["value"] == expected


def test_a_float_nested_in_a_raw_tree_is_stored(api: Api, org: Org) -> None:
    tree = {
        "all": [
            {"field": "score", "operator": "greater_than", "value": 0.75},
            {"not": {"field": "age", "operator": "less_than", "value": 18}},
        ]
    }
    created = sheep_create(api, org, name="Raw", rules=[{"field": "x", "operator": "raw", "value": tree}])
    assert created.status == 201, created.text
    assert read_back(api, org, segment_id_of(created))["rules"][0]["value"] == tree


@pytest.mark.parametrize(
    "literal",
    [
        "123456789012345678901234567890123456789012345678901",  # 51 significant digits
        "1.000000000000000000000000000000000000001",  # 40 significant digits
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",  # not finite once parsed
        "1e126",  # above DynamoDB's range
        "1e-200",  # below DynamoDB's range
        '{"a": [1, 2, 1e300]}',  # nested
    ],
)
def test_numbers_dynamodb_cannot_hold_are_400_naming_the_field(api: Api, org: Org, literal: str) -> None:
    resp = api.post(sheep_path(org), bearer=org.key, body=rule_body(literal))
    assert "'rules.0.value'" in sheep_error(resp)
    assert api.get("/v2/segments", key=org.key).json["results"]["items"] == []


# ------------------------------------------------------------------ 2. values DynamoDB cannot store


@pytest.mark.parametrize(
    "value",
    [
        {"": 1},
        {"ok": {"": "nested empty key"}},
        [{"": None}],
        nested(31),  # the item's 33rd level: rules (1) > rule (2) > 31 lists
        nested(40),
    ],
)
def test_unstorable_rule_values_are_400_and_do_not_poison_the_org(api: Api, org: Org, value: Any) -> None:
    resp = sheep_create(api, org, name="Poison", rules=[{"field": "f", "operator": "equals", "value": value}])
    assert "'rules" in sheep_error(resp)
    assert api.get("/v2/segments", key=org.key).status == 200
    # the name was not taken: a valid segment of that name is created afterwards
    ok = sheep_create(api, org, name="Poison", rules=[{"field": "f", "operator": "equals", "value": "fine"}])
    assert ok.status == 201, ok.text


def test_nesting_up_to_dynamodbs_32_levels_is_storable() -> None:
    value = nested(30, leaf="deep")  # rules (1) > rule (2) > 30 lists: 32 levels
    new = storable_segment(NewSegment(name="Deep", rules=[{"field": "f", "operator": "equals", "value": value}]))
    assert new.rules[0]["value"] == value


def test_the_deepest_rules_the_grammar_allows_are_stored(api: Api, org: Org) -> None:
    # no rule value nests 32 levels any more (equals takes a scalar): the deepest is a raw tree
    value: Any = {"field": "f", "operator": "or_list", "value": ["deep"]}
    for _ in range(RAW_MAX_DEPTH):  # RAW_MAX_DEPTH nested all/any/not nodes, the most allowed
        value = {"all": [value]}
    created = sheep_create(api, org, name="Deep", rules=[{"field": "f", "operator": "raw", "value": value}])
    assert created.status == 201, created.text
    segment_id = segment_id_of(created)
    assert read_back(api, org, segment_id)["rules"][0]["value"] == value
    assert api.get("/v2/segments", key=org.key).status == 200
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200


# ------------------------------------------------------------------ 3. names near the key-size limit

LONG_NAMES = ["😀" * 255, "ΐ" * 255]  # 1,020 bytes; 1,530 bytes once case-folded


@pytest.mark.parametrize("name", LONG_NAMES, ids=["4-byte", "casefold-grows"])
def test_long_multibyte_names_create_stay_unique_rename_and_delete(api: Api, org: Org, name: str) -> None:
    assert len(("NAME#" + name_key(name)).encode()) > 1024  # over DynamoDB's sort-key limit if stored as is
    created = api.post("/v2/segments/create", key=org.key, body={"name": name})
    assert created.status == 200, created.text
    segment_id = created.json["segment_id"]
    # unique, on both surfaces
    assert "already exists" in minerva_error(api.post("/v2/segments/create", key=org.key, body={"name": name}), 404)
    sheep_error(sheep_create(api, org, name=name), 409, "conflict")
    # rename: the long name is freed, the new one taken
    renamed = name[:-1] + "z"
    patched = api.patch(f"/v2/segments/{segment_id}", key=org.key, body={"name": renamed})
    assert patched.status == 200 and patched.json["name"] == renamed, patched.text
    again = sheep_create(api, org, name=name)
    assert again.status == 201, again.text
    minerva_error(api.post("/v2/segments/create", key=org.key, body={"name": renamed}), 404)
    # delete both; both names are free again
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    assert api.delete(f"/v2/segments/{segment_id_of(again)}", key=org.key).status == 200
    assert api.post("/v2/segments/create", key=org.key, body={"name": name}).status == 200
    assert sheep_create(api, org, name=renamed).status == 201


# ------------------------------------------------------------------ 4. bounded creates


def test_create_with_200000_uris_is_400(api: Api, org: Org) -> None:
    uris = [f"/{org.bucket}/person/{i:x}/" for i in range(200_000)]
    body = json.dumps({"name": "Huge", "resource_type": "person", "segment_type": "static", "uris_include": uris})
    assert 4_000_000 < len(body) < 6 * 1024 * 1024
    assert "'uris_include'" in sheep_error(api.post(sheep_path(org), bearer=org.key, body=body))


def test_create_with_1000_rules_is_400(api: Api, org: Org) -> None:
    rules = [{"field": f"f{i}", "operator": "equals", "value": i} for i in range(1000)]
    assert "'rules'" in sheep_error(sheep_create(api, org, name="Many rules", rules=rules))


def test_create_with_a_500_kb_rule_value_is_400(api: Api, org: Org) -> None:
    rules = [{"field": "f", "operator": "equals", "value": "x" * 500_000}]
    assert "'rules.0.value'" in sheep_error(sheep_create(api, org, name="Big value", rules=rules))


def test_too_many_tags_or_long_strings_are_400(api: Api, org: Org) -> None:
    assert "'tags'" in sheep_error(sheep_create(api, org, name="t", tags=[f"t{i}" for i in range(101)]))
    assert "'uris_include.0'" in sheep_error(sheep_create(api, org, name="u", uris_include=["/x/" * 100]))
    assert "'description'" in sheep_error(sheep_create(api, org, name="d", description="d" * 5000))
    assert "'parent_segment'" in sheep_error(sheep_create(api, org, name="p", parent_segment="/" * 300))


def test_a_segment_over_400_kb_within_every_list_bound_is_400(api: Api, org: Org) -> None:
    """1,000 + 1,000 valid URIs of 243 characters: every bound holds, the item would not fit."""

    def uris(kind: str) -> list[str]:
        return [f"/{org.bucket}/{kind * 170}/{i:064d}/" for i in range(1000)]

    resp = sheep_create(api, org, name="Wide", segment_type="hybrid", uris_include=uris("a"), uris_exclude=uris("b"))
    message = sheep_error(resp)
    assert "400 KB" in message
    assert api.get("/v2/segments", key=org.key).json["results"]["items"] == []
    fits = sheep_create(api, org, name="Wide", segment_type="hybrid", uris_include=uris("a"))
    assert fits.status == 201, fits.text
    assert len(read_back(api, org, segment_id_of(fits))["uris_include"]) == 1000


def test_minerva_create_bounds_are_422(api: Api, org: Org) -> None:
    resp = api.post("/v2/segments/create", key=org.key, body={"name": "n", "description": "é" * 4097})
    assert "description" in minerva_error(resp)
    resp = api.post("/v2/segments/create", key=org.key, body={"name": "n" * 256})
    assert "name" in minerva_error(resp)


# ------------------------------------------------------------------ 5 and 6. bodies that are not safe JSON

BODY_ROUTES = ["minerva create", "minerva add", "minerva remove", "minerva patch", "sheep create"]


def send(api: Api, org: Org, route: str, body: str | bytes) -> Any:
    if route == "minerva create":
        return api.post("/v2/segments/create", key=org.key, body=body)
    if route == "minerva add":
        return api.post("/v2/segments/members/add", key=org.key, body=body)
    if route == "minerva remove":
        return api.post("/v2/segments/members/remove", key=org.key, body=body)
    if route == "minerva patch":
        return api.patch(f"/v2/segments/{uuid.uuid4()}", key=org.key, body=body)
    return api.post(sheep_path(org), bearer=org.key, body=body)


def assert_refused(resp: Any, route: str, *words: str) -> None:
    message = sheep_error(resp) if route.startswith("sheep") else minerva_error(resp)
    for word in words:
        assert word in message, message


def _bodies() -> Iterator[tuple[str, str, str]]:
    huge = "9" * 5000
    yield "5000-digit int", f'{{"name": "n", "description": {huge}, "minerva_pids": [{huge}]}}', "digits"
    yield "5000-digit int deep inside", f'{{"name": "n", "rules": [{{"value": {{"x": [{huge}]}}}}]}}', "digits"
    yield "nested 100000", '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", "deeper"
    yield "nested 65", '{"name": ' + "[" * 65 + "]" * 65 + "}", "deeper"
    yield "lone surrogate", '{"name": "x\\ud800-1", "segment_id": "x", "minerva_pids": ["p-1\\udfff"]}', "surrogate"


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(("label", "body", "word"), list(_bodies()), ids=[b[0] for b in _bodies()])
def test_unsafe_json_bodies_are_refused_on_every_body_route(
    api: Api, org: Org, route: str, label: str, body: str, word: str
) -> None:
    assert_refused(send(api, org, route, body), route, word)


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    "raw",
    [
        '{"name":"caf\u00e9"}'.encode("latin-1"),
        '{"name":"café"}'.encode("utf-16"),
        b'{"name":"\xff\xfe"}',
    ],
    ids=["latin-1", "utf-16", "invalid-bytes"],
)
def test_bodies_that_are_not_utf8_are_refused(api: Api, org: Org, route: str, raw: bytes) -> None:
    assert_refused(send(api, org, route, raw), route, "UTF-8")


def test_surrogate_pairs_are_characters_not_lone_surrogates(api: Api, org: Org) -> None:
    resp = api.post("/v2/segments/create", key=org.key, body='{"name": "smile \\ud83d\\ude00"}')
    assert resp.status == 200, resp.text
    assert read_back(api, org, resp.json["segment_id"])["name"] == "smile 😀"


def test_lone_surrogate_pid_is_refused_and_nothing_is_added(api: Api, org: Org) -> None:
    segment_id = api.post("/v2/segments/create", key=org.key, body={"name": "pids"}).json["segment_id"]
    body = '{"segment_id": "' + segment_id + '", "minerva_pids": ["p-ok1", "p-1\\ud800"]}'
    assert "surrogate" in minerva_error(api.post("/v2/segments/members/add", key=org.key, body=body))
    assert read_back(api, org, segment_id)["current_size"] == 0


def test_unsafe_rules_in_the_query_string_are_400(api: Api, org: Org) -> None:
    for rules, word in (("[" * 3000 + "]" * 3000, "deeper"), ('[{"value": %s}]' % ("9" * 5000), "digits")):
        resp = api.post(sheep_path(org), bearer=org.key, query={"name": "q", "resource_type": "person", "rules": rules})
        assert word in sheep_error(resp)


def test_a_body_still_works_after_the_checks(api: Api, org: Org) -> None:
    """Depth 64 is allowed in transport; valid bodies keep working on every route."""
    created = api.post("/v2/segments/create", key=org.key, body={"name": "ok", "x": nested(60)})
    assert created.status == 200, created.text
    segment_id = created.json["segment_id"]
    added = api.post("/v2/segments/members/add", key=org.key, body={"segment_id": segment_id, "minerva_pids": ["p-1"]})
    assert added.status == 200 and added.json["results"]["n_added"] == 1


# ------------------------------------------------------------------ 8. system segments


@pytest.mark.parametrize("how", ["body", "query"])
def test_api_callers_cannot_create_system_segments(api: Api, org: Org, how: str) -> None:
    if how == "body":
        resp = sheep_create(api, org, name="Sys", system_segment=True)
    else:
        resp = api.post(
            sheep_path(org), bearer=org.key, query={"name": "Sys", "resource_type": "person", "system_segment": "true"}
        )
    assert "'system_segment'" in sheep_error(resp)
    assert api.get("/v2/segments", key=org.key).json["results"]["items"] == []
    assert sheep_create(api, org, name="Sys", system_segment=False).status == 201


# ------------------------------------------------------------------ 10. forged cursors


class QueryGuard:
    """A botocore before-call hook on the store's client: every Query's key range must be sane."""

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []
        self.bad: list[str] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"
        params = json.loads(body) if isinstance(body, bytes | str) else dict(body)  # the serialized request
        self.queries.append(params)
        condition = params.get("KeyConditionExpression", "")
        values = {k: next(iter(v.values())) for k, v in (params.get("ExpressionAttributeValues") or {}).items()}
        start_key = params.get("ExclusiveStartKey") or {}
        between = re.search(r"(\w+) BETWEEN (:\w+) AND (:\w+)", condition)
        if between:
            attr, low, high = between.group(1), values[between.group(2)], values[between.group(3)]
            if low > high:
                self.bad.append(f"BETWEEN {low!r} AND {high!r}")
            if attr in start_key and not low <= start_key[attr]["S"] <= high:
                self.bad.append(f"ExclusiveStartKey {start_key[attr]!r} outside {low!r}..{high!r}")
        prefix = re.search(r"begins_with\((\w+), (:\w+)\)", condition)
        if prefix and prefix.group(1) in start_key:
            if not start_key[prefix.group(1)]["S"].startswith(values[prefix.group(2)]):
                self.bad.append(f"ExclusiveStartKey {start_key!r} outside prefix {values[prefix.group(2)]!r}")


@pytest.fixture
def guard(api: Api) -> QueryGuard:
    hook = QueryGuard()
    dynamo.client().meta.events.register("before-call.dynamodb.Query", hook)
    return hook


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def raw_cursor(kind: str, scope: str, position_json: str) -> bytes:
    return ('{"k": ' + json.dumps(kind) + ', "s": ' + json.dumps(scope) + ', "p": ' + position_json + "}").encode()


def forged(kind: str, scope: str) -> list[str]:
    """Cursors of every other shape than encode(kind, scope, <a real position>)."""
    other_kind = "members" if kind != "members" else "history"
    positions: list[Any] = [
        None,
        5,
        -1,
        1.5,
        True,
        "",
        "zzz",
        "LOG#~~",
        "LOG#\uffff",
        "p-" + "a" * 65,
        "PID#p-1",
        {"a": 1},
        [],
        ["LOG#~~", 0],
        ["LOG#2024", -1],
        ["LOG#2024", 10**6],
        ["LOG#2024", 10**30],
        ["LOG#2024", "0"],
        ["LOG#2024", 1.0],
        ["LOG#2024", True],
        ["LOG#2024", 0, 1],
        [["LOG#2024"], 0],
        [None, 0],
        "9999-99-99T99:99:99.999999Z#nope",
    ]
    made = [cursors.encode(kind, scope, p) for p in positions]
    made += [
        cursors.encode(other_kind, scope, "p-1"),  # wrong kind
        cursors.encode(kind, "another-scope", "p-1"),  # wrong scope
        "!!!not base64!!!",
        b64(b"not json at all"),
        b64(b"\xff\xfe\x00"),
        b64(json.dumps({"k": kind, "s": scope}).encode()),  # no position
        b64(b"[" * 700 + b"]" * 700),
        b64(raw_cursor(kind, scope, "[" * 600 + "]" * 600)),
        b64(raw_cursor(kind, scope, "9" * 1000)),
        "x" * 3000,
    ]
    return made


def test_forged_cursors_are_422_for_every_cursor_kind(api: Api, org: Org, guard: QueryGuard) -> None:
    segment_id = api.post("/v2/segments/create", key=org.key, body={"name": "paged"}).json["segment_id"]
    pids = [f"p-{i}" for i in range(5)]
    assert (
        api.post("/v2/segments/members/add", key=org.key, body={"segment_id": segment_id, "minerva_pids": pids}).status
        == 200
    )
    routes = {
        "segments": ("/v2/segments", {}, org.org_id),
        "members": ("/v2/segments/members", {"segment_id": segment_id}, segment_id),
        "history": (f"/v2/segments/{segment_id}/history", {}, segment_id),
    }
    for kind, (path, params, scope) in routes.items():
        for cursor in forged(kind, scope):
            resp = api.get(path, key=org.key, query={**params, "cursor": cursor})
            assert resp.status == 422, (kind, cursor, resp.text)
            assert minerva_error(resp)
    # real cursors still page, through queries the guard inspected
    page = api.get(f"/v2/segments/{segment_id}/history", key=org.key, query={"limit": 2})
    assert page.status == 200 and page.json["results"]["next_cursor"]
    rest = api.get(
        f"/v2/segments/{segment_id}/history",
        key=org.key,
        query={"limit": 2, "cursor": page.json["results"]["next_cursor"]},
    )
    assert rest.status == 200 and len(rest.json["results"]["items"]) == 2
    assert any("BETWEEN" in q.get("KeyConditionExpression", "") for q in guard.queries)
    assert guard.bad == []


def test_the_query_guard_catches_an_inverted_range(aws: None) -> None:
    """The guard itself can fail: an inverted BETWEEN is reported."""
    hook = QueryGuard()
    request = {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
        "ExpressionAttributeValues": {":pk": {"S": "x"}, ":start": {"S": "LOG#~~"}, ":end": {"S": "LOG#~"}},
    }
    hook(params={"body": json.dumps(request).encode()})
    assert hook.bad == ["BETWEEN 'LOG#~~' AND 'LOG#~'"]


# ------------------------------------------------------------------ 11. invisible and control characters in names

REFUSED_NAMES = {
    "zero-width space": "X\u200b",
    "only zero-width": "\u200b\u200c\u200d\u2060\ufeff",
    "NUL": "a\x00b",
    "ESC": "\x1b[31mred",
    "RLO": "abc\u202edcba",
    "LRM": "a\u200eb",
    "line separator": "a\u2028b",
}


@pytest.mark.parametrize("name", list(REFUSED_NAMES.values()), ids=list(REFUSED_NAMES))
def test_names_with_control_format_or_zero_width_characters_are_refused(api: Api, org: Org, name: str) -> None:
    assert "name" in minerva_error(api.post("/v2/segments/create", key=org.key, body={"name": name}))
    assert "'name'" in sheep_error(sheep_create(api, org, name=name))
    segment_id = api.post("/v2/segments/create", key=org.key, body={"name": "plain"}).json["segment_id"]
    assert "name" in minerva_error(api.patch(f"/v2/segments/{segment_id}", key=org.key, body={"name": name}))
    assert read_back(api, org, segment_id)["name"] == "plain"


def test_x_and_x_with_a_zero_width_space_are_one_name(api: Api, org: Org) -> None:
    assert name_key("X\u200b") == name_key("X") == name_key("\ufeffx") == name_key("x\u200c\u200d\u2060")
    assert name_key("X\u200b") != name_key("X y")


def test_a_legacy_name_with_a_zero_width_character_can_still_be_renamed_and_deleted(api: Api, org: Org) -> None:
    """A segment stored before such names were refused keeps the name key it was stored with; it is
    served, renamed (its old lock freed) and deleted."""
    at = "2024-01-01T00:00:00.000000Z"
    segment = {
        **NewSegment(name="legacy").model_dump(),
        "name": "X\u200b",
        "segment_id": str(uuid.uuid4()),
        "org_id": org.org_id,
        "bucket": org.bucket,
        "current_size": 0,
        "created_at": at,
        "updated_at": at,
        "record_state": "active",
    }
    segment_store.put_with_name(segment, "x\u200b")  # the name key as it was computed then
    segment_id = segment["segment_id"]
    assert read_back(api, org, segment_id)["name"] == "X\u200b"
    renamed = api.patch(f"/v2/segments/{segment_id}", key=org.key, body={"name": "Y"})
    assert renamed.status == 200, renamed.text
    assert api.post("/v2/segments/create", key=org.key, body={"name": "X"}).status == 200
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    assert api.post("/v2/segments/create", key=org.key, body={"name": "y"}).status == 200


def test_ordinary_whitespace_is_trimmed_and_inner_spaces_kept(api: Api, org: Org) -> None:
    resp = api.post("/v2/segments/create", key=org.key, body={"name": "\t Top  donors \n"})
    assert resp.status == 200, resp.text
    assert read_back(api, org, resp.json["segment_id"])["name"] == "Top  donors"
