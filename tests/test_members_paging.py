"""GET /v2/segments/members by page and by cursor (docs/api.md#minerva-members), and the history ledger's paging."""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers.assertions import assert_error
from helpers.members import MEMBERS, add, new_segment, remove, results

from conftest import Api, Org
from segments import cursors, store
from segments.store import dynamo
from segments.store import members as members_store
from segments.usecases import planning


@pytest.fixture
def page_size(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("MEMBERS_PAGE_SIZE", "3")
    store.reset()
    return 3


def members(api: Api, org: Org, segment_id: str, **query: Any) -> dict[str, Any]:
    return results(api.get(MEMBERS, key=org.key, query={"segment_id": segment_id, **query}))


def all_by_cursor(api: Api, org: Org, segment_id: str) -> tuple[list[str], int]:
    page = members(api, org, segment_id)
    seen, calls = [i["minerva_pid"] for i in page["items"]], 1
    while page["next_cursor"]:
        page = members(api, org, segment_id, cursor=page["next_cursor"])
        assert page["page"] is None
        seen += [i["minerva_pid"] for i in page["items"]]
        calls += 1
    assert page["list_continues"] is False
    return seen, calls


@contextmanager
def reads() -> Iterator[dict[str, int]]:
    """Count the store's Query calls and the items they read (ScannedCount: what read units pay for)."""
    seen = {"Query": 0, "scanned": 0, "other": 0}

    def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            seen["Query"] += 1
            seen["scanned"] += int(parsed.get("ScannedCount", 0))
        else:
            seen["other"] += 1

    events = dynamo.client().meta.events
    events.register("after-call.dynamodb", after, unique_id="members-paging-reads")
    try:
        yield seen
    finally:
        events.unregister("after-call.dynamodb", unique_id="members-paging-reads")


# ------------------------------------------------------------------ by page


def test_pages_by_number_in_pid_order(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{c}" for c in "hgfedcba"]
    random.Random(7).shuffle(pids)
    results(add(api, org, sid, pids))
    first = members(api, org, sid)
    assert [i["minerva_pid"] for i in first["items"]] == ["p-a", "p-b", "p-c"]
    assert first["total_count"] == 8 and first["page"] == 1 and first["list_continues"] is True
    assert all(set(i) == {"minerva_pid", "first_added_at"} for i in first["items"])
    third = members(api, org, sid, page=3)
    assert [i["minerva_pid"] for i in third["items"]] == ["p-g", "p-h"]
    assert third["list_continues"] is False and third["next_cursor"] is None and third["page"] == 3
    past = members(api, org, sid, page=4)
    assert past["items"] == [] and past["list_continues"] is False and past["total_count"] == 8
    assert members(api, org, sid, page=1000)["items"] == []


def test_a_full_last_page_does_not_continue(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(6)]))
    second = members(api, org, sid, page=2)
    assert len(second["items"]) == 3 and second["list_continues"] is False and second["next_cursor"] is None


def test_empty_segment_has_an_empty_first_page(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    assert members(api, org, sid) == {
        "items": [],
        "total_count": 0,
        "page": 1,
        "list_continues": False,
        "next_cursor": None,
    }


def test_removed_members_are_skipped_by_both_kinds_of_paging(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(10)]))
    results(remove(api, org, sid, ["p-0", "p-3", "p-4", "p-9"]))
    expected = ["p-1", "p-2", "p-5", "p-6", "p-7", "p-8"]
    by_page = [i["minerva_pid"] for n in (1, 2, 3) for i in members(api, org, sid, page=n)["items"]]
    assert by_page == expected
    assert all_by_cursor(api, org, sid)[0] == expected
    assert members(api, org, sid)["total_count"] == 6


# ------------------------------------------------------------------ by cursor


def test_cursor_walks_every_member_once_in_order(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i:02d}" for i in range(11)]
    results(add(api, org, sid, list(reversed(pids))))
    seen, calls = all_by_cursor(api, org, sid)
    assert seen == pids and calls == 4


def test_page_one_gives_a_cursor_to_page_two(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(7)]))
    cursor = members(api, org, sid, page=1)["next_cursor"]
    assert members(api, org, sid, cursor=cursor)["items"] == members(api, org, sid, page=2)["items"]


def test_a_deep_cursor_page_costs_what_the_first_page_costs(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMBERS_PAGE_SIZE", "20")
    store.reset()
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i:03d}" for i in range(200)]))
    with reads() as first:
        page = members(api, org, sid)
    cursor = page["next_cursor"]
    for _ in range(7):
        cursor = members(api, org, sid, cursor=cursor)["next_cursor"]
    with reads() as deep:
        deep_page = members(api, org, sid, cursor=cursor)
    assert deep_page["items"][0]["minerva_pid"] == "p-160"
    assert deep == first and first["scanned"] == 21  # a page and one more to know whether the list goes on
    with reads() as by_number:
        assert members(api, org, sid, page=9)["items"] == deep_page["items"]
    assert by_number["scanned"] > deep["scanned"]  # what `cursor` is for


def _b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_bad_cursors_are_422(api: Api, org: Org, page_size: int) -> None:
    sid, other = new_segment(api, org), new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(5)]))
    results(add(api, org, other, [f"p-{i}" for i in range(5)]))
    foreign = members(api, org, other)["next_cursor"]
    history_cursor = cursors.encode("history", sid, ["LOG#x", 0])
    for cursor in (
        "garbage!",
        "",
        _b64(b"\xff\xfe"),
        _b64([1, 2]),
        _b64({"k": "members", "s": sid}),
        foreign,
        history_cursor,
        cursors.encode("members", sid, "not a pid"),
        cursors.encode("members", sid, 7),
    ):
        assert_error(api.get(MEMBERS, key=org.key, query={"segment_id": sid, "cursor": cursor}), 422)


def test_page_and_cursor_together_are_422(api: Api, org: Org, page_size: int) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, [f"p-{i}" for i in range(5)]))
    cursor = members(api, org, sid)["next_cursor"]
    body = assert_error(api.get(MEMBERS, key=org.key, query={"segment_id": sid, "page": 1, "cursor": cursor}), 422)
    assert "page" in body["error"] and "cursor" in body["error"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"segment_id": "nope"},
        {"segment_id": "SID", "page": 0},
        {"segment_id": "SID", "page": -1},
        {"segment_id": "SID", "page": "two"},
    ],
)
def test_bad_parameters_are_422(api: Api, org: Org, query: dict[str, Any]) -> None:
    sid = new_segment(api, org)
    query = {k: (sid if v == "SID" else v) for k, v in query.items()}
    assert_error(api.get(MEMBERS, key=org.key, query=query), 422)


def test_unknown_foreign_or_deleted_segment_is_404(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org)
    assert_error(api.get(MEMBERS, key=org.key, query={"segment_id": str(uuid.uuid4())}), 404, "Segment not found")
    assert_error(api.get(MEMBERS, key=other_org.key, query={"segment_id": sid}), 404, "Segment not found")
    assert api.delete(f"/v2/segments/{sid}", key=org.key).status == 200
    assert_error(api.get(MEMBERS, key=org.key, query={"segment_id": sid}), 404, "Segment not found")


def test_real_page_size_across_more_than_5000_members(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    pids = [f"p-{i:05d}" for i in range(5_003)]
    assert results(add(api, org, sid, pids))["new_current_size"] == 5_003
    first = members(api, org, sid)
    assert len(first["items"]) == 5_000 and first["list_continues"] is True and first["total_count"] == 5_003
    assert [i["minerva_pid"] for i in first["items"]] == pids[:5_000]
    second = members(api, org, sid, page=2)
    assert [i["minerva_pid"] for i in second["items"]] == pids[5_000:] and second["list_continues"] is False
    by_cursor = members(api, org, sid, cursor=first["next_cursor"])
    assert by_cursor["items"] == second["items"] and by_cursor["next_cursor"] is None
    assert members(api, org, sid, page=3)["items"] == []


# ------------------------------------------------------------------ history


def history(api: Api, org: Org, segment_id: str, **query: Any) -> dict[str, Any]:
    return results(api.get(f"/v2/segments/{segment_id}/history", key=org.key, query=query))


def test_history_pages_across_ledger_items(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    # Six ledger items from nine changes: with the real chunk (1,000 PIDs an item) every page
    # boundary below would need thousands of PIDs written through moto.
    monkeypatch.setattr(planning, "LEDGER_CHUNK", 2)
    sid = new_segment(api, org)
    a = add(api, org, sid, ["p-1", "p-2", "p-3", "p-4", "p-5"]).json["api_request_id"]  # three ledger items
    r = remove(api, org, sid, ["p-2", "p-4", "p-5"]).json["api_request_id"]  # two more
    b = add(api, org, sid, ["p-2", "p-1"]).json["api_request_id"]  # p-1 redundant: no entry
    expected = [(p, "added", a) for p in ("p-1", "p-2", "p-3", "p-4", "p-5")]
    expected += [(p, "removed", r) for p in ("p-2", "p-4", "p-5")] + [("p-2", "added", b)]
    everything = history(api, org, sid)
    assert [(e["minerva_pid"], e["change"], e["api_request_id"]) for e in everything["items"]] == expected
    assert everything["next_cursor"] is None
    for limit in (1, 2, 3, 4, 9):
        seen: list[tuple[str, str, str]] = []
        page = history(api, org, sid, limit=limit)
        while True:
            assert len(page["items"]) <= limit
            seen += [(e["minerva_pid"], e["change"], e["api_request_id"]) for e in page["items"]]
            if not page["next_cursor"]:
                break
            page = history(api, org, sid, limit=limit, cursor=page["next_cursor"])
        assert seen == expected, limit


def test_history_entries_carry_time_and_reason(api: Api, org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1"]))
    [entry] = history(api, org, sid)["items"]
    assert set(entry) == {"minerva_pid", "change", "at", "api_request_id", "reason"}
    assert entry["reason"] == "api" and entry["at"] == members_store.get_many(sid, ["p-1"])["p-1"]["first_added_at"]


def test_history_errors(api: Api, org: Org, other_org: Org) -> None:
    sid = new_segment(api, org)
    results(add(api, org, sid, ["p-1", "p-2"]))
    path = f"/v2/segments/{sid}/history"
    for query in (
        {"limit": 0},
        {"limit": 1001},
        {"cursor": "nope"},
        {"cursor": cursors.encode("members", sid, "p-1")},
        {"cursor": cursors.encode("history", sid, ["PID#p-1", 0])},
        {"cursor": cursors.encode("history", sid, ["LOG#x", -1])},
    ):
        assert_error(api.get(path, key=org.key, query=query), 422)
    assert_error(api.get(path, key=other_org.key), 404, "Segment not found")
    assert_error(api.get(f"/v2/segments/{uuid.uuid4()}/history", key=org.key), 404, "Segment not found")
    assert_error(api.get("/v2/segments/not-a-uuid/history", key=org.key), 404, "Segment not found")
    assert api.delete(f"/v2/segments/{sid}", key=org.key).status == 200
    assert_error(api.get(path, key=org.key), 404, "Segment not found")
