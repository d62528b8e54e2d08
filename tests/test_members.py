"""POST /v2/segments/members/add and /remove (docs/api.md#minerva-add-members), memberships, via the authorizer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.assertions import REQ_ID, TIME_Z, assert_error
from helpers.faults import watch
from helpers.members import (
    ADD,
    MEMBERS,
    MEMBERSHIPS,
    REMOVE,
    active_count,
    add,
    ledger,
    member,
    new_segment,
    remove,
    results,
    size,
)
from helpers.raw_table import raw_active_count, raw_size

from conftest import Api, Org
from segments import store
from segments.store import members as members_store
from segments.store import people

# ------------------------------------------------------------------ add (docs/api.md#minerva-add-members)


def test_add_returns_the_contract_body(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    resp = add(api, org, sid, ["p-a1b2c3d4e5f6", "p-bad!", "p-x"])
    assert resp.status == 200, resp.text
    body = resp.json
    assert set(body) == {"api_request_id", "results", "request_completed_at"}
    assert REQ_ID.match(body["api_request_id"]) and resp.headers["x-api-request-id"] == body["api_request_id"]
    assert TIME_Z.match(body["request_completed_at"])
    assert body["results"] == {
        "invalid_minerva_pids": ["p-bad!"],
        "n_redundant_additions": 0,
        "n_added": 2,
        "new_current_size": 2,
    }
    assert size(org, sid) == 2 == active_count(sid)

    assert raw_size(org.org_id, sid) == 2 == raw_active_count(sid)


def test_duplicates_inside_one_request_count_once(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    r = results(add(api, org, sid, ["p-1", "p-2", "p-1", "p-1", "bad", "bad", "p-2"]))
    assert r == {"invalid_minerva_pids": ["bad"], "n_redundant_additions": 0, "n_added": 2, "new_current_size": 2}
    assert ledger(sid) == [("p-1", "added"), ("p-2", "added")]


@pytest.mark.parametrize(
    "pid",
    ["", "p-", "p_abc", "P-abc", "x-abc", "p-abc-def", "p-" + "a" * 65, " p-abc", "p-abc ", "p-ä"],
)
def test_invalid_formats_are_listed_and_the_rest_succeeds(api: Api, org: Org, pid: str) -> None:
    sid = new_segment(api, org)
    r = results(add(api, org, sid, [pid, "p-ok"]))
    assert r["invalid_minerva_pids"] == [pid] and r["n_added"] == 1 and r["new_current_size"] == 1


def test_64_character_pid_is_valid(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert results(add(api, org, sid, ["p-" + "Z9" * 32]))["n_added"] == 1


def test_already_members_are_redundant_and_get_a_new_last_added_at(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2"]))
    first = member(sid, "p-1")
    assert first and first["first_added_at"] == first["last_added_at"]
    r = results(add(api, org, sid, ["p-1", "p-2", "p-3"]))
    assert r == {"invalid_minerva_pids": [], "n_redundant_additions": 2, "n_added": 1, "new_current_size": 3}
    again = member(sid, "p-1")
    assert again and again["first_added_at"] == first["first_added_at"]
    assert again["last_added_at"] > first["last_added_at"]
    assert ledger(sid) == [("p-1", "added"), ("p-2", "added"), ("p-3", "added")]  # redundant adds are no change


def test_adding_all_again_is_all_redundant(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i}" for i in range(120)]  # more than one batch read
    assert results(add(api, org, sid, pids))["n_added"] == 120
    r = results(add(api, org, sid, pids))
    assert r == {"invalid_minerva_pids": [], "n_redundant_additions": 120, "n_added": 0, "new_current_size": 120}


def test_empty_list_changes_nothing(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    assert results(add(api, org, sid, [])) == {
        "invalid_minerva_pids": [],
        "n_redundant_additions": 0,
        "n_added": 0,
        "new_current_size": 1,
    }


def test_readded_pid_gets_its_original_first_added_at_back(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    original = member(sid, "p-1")
    assert original
    assert results(remove(api, org, sid, ["p-1"]))["n_deleted"] == 1
    removed = member(sid, "p-1")
    assert removed and removed["active"] is False and removed["first_added_at"] == original["first_added_at"]
    r = results(add(api, org, sid, ["p-1"]))
    assert r["n_added"] == 1 and r["n_redundant_additions"] == 0 and r["new_current_size"] == 1
    readded = member(sid, "p-1")
    assert readded and readded["active"] is True
    assert readded["first_added_at"] == original["first_added_at"]
    assert readded["last_added_at"] > original["last_added_at"]
    items = results(api.get(MEMBERS, key=org.key, query={"segment_id": sid}))["items"]
    assert items == [{"minerva_pid": "p-1", "first_added_at": original["first_added_at"]}]


def test_unknown_segment_is_404(api: Api, org: Org) -> None:
    assert_error(add(api, org, str(uuid.uuid4()), ["p-1"]), 404, "Segment not found")
    assert_error(remove(api, org, str(uuid.uuid4()), ["p-1"]), 404, "Segment not found")


def test_foreign_segment_is_404_like_a_missing_one_and_is_not_touched(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    assert_error(add(api, other_org, sid, ["p-2"]), 404, "Segment not found")
    assert_error(remove(api, other_org, sid, ["p-1"]), 404, "Segment not found")
    assert size(org, sid) == 1 and member(sid, "p-2") is None and member(sid, "p-1")["active"] is True


def test_deleted_segment_is_404(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert api.delete(f"/v2/segments/{sid}", key=org.key).status == 200
    assert_error(add(api, org, sid, ["p-1"]), 404, "Segment not found")
    assert_error(remove(api, org, sid, ["p-1"]), 404, "Segment not found")


def test_missing_key_is_401(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    resp = api.post(ADD, body={"segment_id": sid, "minerva_pids": ["p-1"]})
    assert resp.status == 401
    assert member(sid, "p-1") is None


# ------------------------------------------------------------------ limits


def test_over_the_limit_is_413_and_writes_nothing(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i}" for i in range(10_001)]
    resp = add(api, org, sid, pids)
    body = assert_error(resp, 413)
    assert "10001" in body["error"] and "10000" in body["error"]
    assert_error(remove(api, org, sid, pids), 413)
    assert size(org, sid) == 0 and active_count(sid) == 0 and ledger(sid) == []
    assert member(sid, "p-0") is None


def test_the_limit_counts_entries_and_follows_the_setting(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_PIDS_PER_REQUEST", "3")
    store.reset()
    sid = new_segment(api, org)
    assert results(add(api, org, sid, ["p-1", "p-2", "p-3"]))["n_added"] == 3
    assert_error(add(api, org, sid, ["p-4", "p-4", "p-4", "p-4"]), 413)  # entries, before de-duplication
    assert member(sid, "p-4") is None and size(org, sid) == 3


# ------------------------------------------------------------------ request validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "Request body must be a JSON object"),
        ("[1, 2]", "Request body must be a JSON object"),
        ({"minerva_pids": ["p-1"]}, "Input data must contain a 'segment_id' field"),
        ({"segment_id": "SID"}, "Input data must contain a 'minerva_pids' field"),
    ],
)
def test_malformed_bodies_are_422(api: Api, org: Org, body: Any, message: str) -> None:
    sid = new_segment(api, org)
    if isinstance(body, dict):
        body = {k: (sid if v == "SID" else v) for k, v in body.items()}
    for path in (ADD, REMOVE):
        assert_error(api.post(path, key=org.key, body=body), 422, message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("segment_id", "not-a-uuid"),
        ("segment_id", 12),
        ("minerva_pids", "p-1"),
        ("minerva_pids", [1, "p-2"]),
        ("minerva_pids", None),
    ],
)
def test_wrong_types_are_422_naming_the_field(api: Api, org: Org, field: str, value: Any) -> None:
    sid = new_segment(api, org)
    body = {"segment_id": sid, "minerva_pids": ["p-1"], field: value}
    for path in (ADD, REMOVE):
        resp = assert_error(api.post(path, key=org.key, body=body), 422)
        assert field in resp["error"]
    assert member(sid, "p-1") is None


def test_segment_id_in_capitals_names_the_same_segment(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert results(add(api, org, sid.upper(), ["p-1"]))["new_current_size"] == 1
    assert size(org, sid) == 1


# ------------------------------------------------------------------ registry validation


def test_registry_mode_requires_a_registry_record(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PID_VALIDATION", "registry")
    store.reset()
    sid = new_segment(api, org)
    people.put(org.org_id, "p-known1", {"name": "Ada"})
    people.put(org.org_id, "p-known2")
    people.put("org-b", "p-elsewhere")  # another org's registry does not count
    r = results(add(api, org, sid, ["p-known1", "p-unknown", "bad", "p-known2", "p-elsewhere", "p-unknown"]))
    assert r == {
        "invalid_minerva_pids": ["p-unknown", "bad", "p-elsewhere"],
        "n_redundant_additions": 0,
        "n_added": 2,
        "new_current_size": 2,
    }
    assert member(sid, "p-unknown") is None


def test_format_mode_needs_no_registry(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert results(add(api, org, sid, ["p-nobody"]))["n_added"] == 1


def test_registry_mode_removal_checks_format_only(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))  # added while the mode was "format"
    monkeypatch.setenv("PID_VALIDATION", "registry")
    store.reset()
    assert results(remove(api, org, sid, ["p-1", "bad"])) == {
        "invalid_minerva_pids": ["bad"],
        "n_deleted": 1,
        "new_current_size": 0,
    }


# ------------------------------------------------------------------ remove (docs/api.md#minerva-remove-members)


def test_remove_counts_only_members(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2", "p-3"]))
    resp = remove(api, org, sid, ["p-1", "p-1", "p-9", "nope", "p-3"])
    assert resp.status == 200
    assert set(resp.json) == {"api_request_id", "results", "request_completed_at"}
    assert resp.json["results"] == {"invalid_minerva_pids": ["nope"], "n_deleted": 2, "new_current_size": 1}
    assert results(remove(api, org, sid, ["p-1"])) == {
        "invalid_minerva_pids": [],
        "n_deleted": 0,
        "new_current_size": 1,
    }
    assert size(org, sid) == 1 == active_count(sid)

    assert raw_size(org.org_id, sid) == 1 == raw_active_count(sid)


def test_removal_keeps_the_history(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    a = add(api, org, sid, ["p-1", "p-2"])
    r = remove(api, org, sid, ["p-2"])
    kept = member(sid, "p-2")
    assert kept and kept["active"] is False and kept["removed_at"] and kept["first_added_at"]
    history = results(api.get(f"/v2/segments/{sid}/history", key=org.key))["items"]
    assert [(h["minerva_pid"], h["change"], h["api_request_id"]) for h in history] == [
        ("p-1", "added", a.json["api_request_id"]),
        ("p-2", "added", a.json["api_request_id"]),
        ("p-2", "removed", r.json["api_request_id"]),
    ]
    assert all(h["reason"] == "api" and TIME_Z.match(h["at"]) for h in history)
    assert history[2]["at"] == kept["removed_at"]


def test_removed_members_are_not_listed_and_sizes_agree(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2", "p-3"]))
    results(remove(api, org, sid, ["p-2"]))
    page = results(api.get(MEMBERS, key=org.key, query={"segment_id": sid}))
    assert [i["minerva_pid"] for i in page["items"]] == ["p-1", "p-3"] and page["total_count"] == 2
    segment = api.get(f"/v2/segments/{sid}", key=org.key).json
    assert segment["current_size"] == 2


# ------------------------------------------------------------------ memberships of a PID


def test_memberships_lists_live_segments_holding_the_pid(api: Api, org: Org) -> None:
    s1, s2, s3 = (new_segment(api, org, n) for n in ("One", "Two", "Three"))
    results(add(api, org, s1, ["p-1", "p-2"]))
    results(add(api, org, s2, ["p-1"]))
    results(add(api, org, s3, ["p-1"]))
    results(add(api, org, s1, ["p-1"]))  # redundant: last_added_at moves on
    results(remove(api, org, s2, ["p-1"]))
    assert api.delete(f"/v2/segments/{s3}", key=org.key).status == 200
    resp = api.get(MEMBERSHIPS, key=org.key, query={"minerva_pid": "p-1"})
    body = results(resp)
    assert body["minerva_pid"] == "p-1"
    assert [(i["segment_id"], i["name"]) for i in body["items"]] == [(s1, "One")]
    stored = member(s1, "p-1")
    assert body["items"][0]["first_added_at"] == stored["first_added_at"]
    assert body["items"][0]["last_added_at"] == stored["last_added_at"] > stored["first_added_at"]
    assert results(api.get(MEMBERSHIPS, key=org.key, query={"minerva_pid": "p-none"}))["items"] == []


def test_memberships_follow_a_rename(api: Api, org: Org) -> None:
    sid = new_segment(api, org, "Before")
    results(add(api, org, sid, ["p-1"]))
    assert api.patch(f"/v2/segments/{sid}", key=org.key, body={"name": "After"}).status == 200
    assert results(api.get(MEMBERSHIPS, key=org.key, query={"minerva_pid": "p-1"}))["items"][0]["name"] == "After"


@pytest.mark.parametrize("query", [{}, {"minerva_pid": "bad"}, {"minerva_pid": ""}])
def test_memberships_need_a_valid_pid(api: Api, org: Org, query: dict[str, str]) -> None:
    assert_error(api.get(MEMBERSHIPS, key=org.key, query=query), 422)


# ------------------------------------------------------------------ tenancy


def test_a_second_org_sees_nothing(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org, "Private")
    results(add(api, org, sid, ["p-1", "p-2"]))
    results(remove(api, org, sid, ["p-2"]))
    assert_error(api.get(MEMBERS, key=other_org.key, query={"segment_id": sid}), 404, "Segment not found")
    assert_error(api.get(f"/v2/segments/{sid}/history", key=other_org.key), 404, "Segment not found")
    assert_error(api.get(f"/v2/segments/{sid}", key=other_org.key), 404, "Segment not found")
    assert results(api.get(MEMBERSHIPS, key=other_org.key, query={"minerva_pid": "p-1"}))["items"] == []
    assert results(api.get("/v2/segments", key=other_org.key))["items"] == []
    # the other org's own segment with the same PIDs is its own business
    theirs = new_segment(api, other_org, "Private")
    assert results(add(api, other_org, theirs, ["p-1"]))["n_added"] == 1
    mine = results(api.get(MEMBERSHIPS, key=org.key, query={"minerva_pid": "p-1"}))["items"]
    assert [i["segment_id"] for i in mine] == [sid]


# ------------------------------------------------------------------ first fill


def test_first_fill_of_a_new_segment_reads_no_members(api: Api, org: Org) -> None:
    segment_id = new_segment(api, org)
    with watch("BatchGetItem") as reads:
        assert results(add(api, org, segment_id, ["p-a1", "p-a2"]))["n_added"] == 2
        assert reads.calls == 0  # nothing can exist yet: every PID is new
        # once member items exist, an add reads them (duplicates and re-adds must be found)
        again = results(add(api, org, segment_id, ["p-a1", "p-a3"]))
    assert (again["n_added"], again["n_redundant_additions"], again["new_current_size"]) == (1, 1, 3)
    assert reads.calls == 1


def test_a_segment_emptied_by_removals_still_reads_before_adding(api: Api, org: Org) -> None:
    segment_id = new_segment(api, org)
    results(add(api, org, segment_id, ["p-x1"]))
    first = member(segment_id, "p-x1")
    results(remove(api, org, segment_id, ["p-x1"]))
    assert size(org, segment_id) == 0
    back = results(add(api, org, segment_id, ["p-x1"]))
    assert back["n_added"] == 1
    assert member(segment_id, "p-x1")["first_added_at"] == first["first_added_at"]  # found, not re-created


def test_memberships_keep_the_exact_org_when_another_orgs_id_extends_it(api: Api) -> None:
    """An org's memberships are read by the prefix MEMBER#{org}# of the person index; an org whose
    id is this one's plus '#...' shares that prefix and must never show up in the answer. Such org
    ids are refused now (docs/limits.md), so the other org's membership is written as one stored
    before the check would be."""
    from conftest import make_org

    short = make_org("acme", "acme")
    mine, theirs = new_segment(api, short, "Mine"), str(uuid.uuid4())
    add(api, short, mine, ["p-shared1"])
    at = "2024-01-01T00:00:00.000000Z"
    legacy = {"org_id": "acme#eu", "segment_id": theirs, "minerva_pid": "p-shared1", "active": True}
    members_store.put([{**legacy, "first_added_at": at, "last_added_at": at, "last_op": "add"}])
    resp = api.get("/v2/segments/memberships", key=short.key, query={"minerva_pid": "p-shared1"})
    assert resp.status == 200, resp.text
    assert [m["segment_id"] for m in resp.json["results"]["items"]] == [mine]
    # the store itself keeps the exact org (the use case's live-segment check is a second guard)
    for org_id, segment in (("acme", mine), ("acme#eu", theirs)):
        assert [m["segment_id"] for m in members_store.holding(org_id, "p-shared1")] == [segment]
