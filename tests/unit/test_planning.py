"""Membership planning (usecases/planning.py): what an add or a remove changes, given what is stored."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segments.usecases import planning
from segments.usecases.planning import dedupe, ledger_entries, plan, screen, to_log

ORG, SEG = "org-a", "11111111-2222-4333-8444-555555555555"
T0, T1, T2 = "2024-01-01T00:00:00.000000Z", "2024-02-01T00:00:00.000000Z", "2024-03-01T00:00:00.000000Z"
IDS = {"org_id": ORG, "segment_id": SEG}


def stored(pid: str, *, active: bool, last_op: str = "added#req_old@" + T0, **more: Any) -> dict[str, Any]:
    return {
        **IDS,
        "minerva_pid": pid,
        "active": active,
        "first_added_at": T0,
        "last_added_at": T0,
        "last_op": last_op,
        **more,
    }


def plan_of(
    change: str, pids: list[str], existing: dict[str, dict[str, Any]], token: str | None = None, at: str = T2
) -> planning.Plan:
    return plan(
        org_id=ORG,
        segment_id=SEG,
        pids=pids,
        existing=existing,
        change=change,  # type: ignore[arg-type]
        token=token or f"{change}#req_now",
        at=at,
    )


# ------------------------------------------------------------------ add


def test_adding_a_new_pid_writes_an_active_member_first_added_now() -> None:
    p = plan_of("added", ["p-1"], {})
    assert p.changed == ["p-1"] and p.delta == 1 and p.redundant == 0 and p.done_before == {}
    assert p.writes == [
        {
            **IDS,
            "minerva_pid": "p-1",
            "active": True,
            "first_added_at": T2,
            "last_added_at": T2,
            "last_op": f"added#req_now@{T2}",
        }
    ]


def test_adding_an_active_member_is_redundant_and_moves_only_last_added_at() -> None:
    p = plan_of("added", ["p-1"], {"p-1": stored("p-1", active=True)})
    assert p.changed == [] and p.delta == 0 and p.redundant == 1
    [write] = p.writes
    assert write["last_added_at"] == T2 and write["first_added_at"] == T0 and write["active"] is True
    assert write["last_op"] == f"added#req_old@{T0}"  # not a change: its last change stays on record


def test_readding_an_inactive_member_keeps_its_first_added_at() -> None:
    p = plan_of("added", ["p-1"], {"p-1": stored("p-1", active=False, removed_at=T1, last_op=f"removed#req_old@{T1}")})
    assert p.changed == ["p-1"] and p.delta == 1 and p.redundant == 0
    [write] = p.writes
    assert write["active"] is True and write["first_added_at"] == T0 and write["last_added_at"] == T2
    assert write["last_op"] == f"added#req_now@{T2}"


def test_an_add_retried_after_it_wrote_is_recognised_by_its_token() -> None:
    p = plan_of(
        "added", ["p-1", "p-2"], {"p-1": stored("p-1", active=True, last_op=f"added#k-1@{T1}")}, token="added#k-1"
    )
    assert p.done_before == {"p-1": T1}  # the earlier attempt's time, for the ledger
    assert p.redundant == 0 and p.delta == 1 and p.changed == ["p-2"]
    assert [w["minerva_pid"] for w in p.writes] == ["p-2"]


def test_another_operations_token_is_not_mine() -> None:
    member = stored("p-1", active=True, last_op=f"added#k-1@{T1}")
    assert plan_of("added", ["p-1"], {"p-1": member}, token="added#k-2").redundant == 1
    assert plan_of("added", ["p-1"], {"p-1": member}, token="added#k-").redundant == 1


def test_tokens_holding_at_signs_are_still_recognised() -> None:
    token = "added#someone@example.com"
    first = plan_of("added", ["p-1"], {}, token=token, at=T1)
    again = plan_of("added", ["p-1"], {"p-1": first.writes[0]}, token=token)
    assert again.done_before == {"p-1": T1} and again.writes == [] and again.redundant == 0


def test_counts_and_delta_of_a_mixed_add() -> None:
    existing = {
        "p-a1": stored("p-a1", active=True),
        "p-a2": stored("p-a2", active=True),
        "p-i1": stored("p-i1", active=False),
        "p-m1": stored("p-m1", active=True, last_op=f"added#k@{T1}"),
    }
    p = plan_of("added", ["p-n1", "p-a1", "p-i1", "p-a2", "p-m1", "p-n2"], existing, token="added#k")
    assert (p.redundant, p.delta, p.changed, p.done_before) == (2, 3, ["p-n1", "p-i1", "p-n2"], {"p-m1": T1})
    assert [w["minerva_pid"] for w in p.writes] == ["p-n1", "p-a1", "p-i1", "p-a2", "p-n2"]
    assert all(w["org_id"] == ORG and w["segment_id"] == SEG for w in p.writes)


# ------------------------------------------------------------------ remove


def test_removing_an_active_member_deactivates_it_and_keeps_its_history() -> None:
    p = plan_of("removed", ["p-1"], {"p-1": stored("p-1", active=True)})
    assert p.changed == ["p-1"] and p.delta == -1 and p.redundant == 0
    [write] = p.writes
    assert write["active"] is False and write["removed_at"] == T2 and write["first_added_at"] == T0
    assert write["last_op"] == f"removed#req_now@{T2}"


def test_removing_a_stranger_or_a_removed_member_changes_nothing() -> None:
    p = plan_of("removed", ["p-9", "p-1"], {"p-1": stored("p-1", active=False, last_op=f"removed#other@{T1}")})
    assert (p.changed, p.delta, p.redundant, p.writes, p.done_before) == ([], 0, 0, [], {})


def test_a_remove_retried_after_it_wrote_is_recognised_by_its_token() -> None:
    existing = {"p-1": stored("p-1", active=False, last_op=f"removed#k@{T1}"), "p-2": stored("p-2", active=True)}
    p = plan_of("removed", ["p-1", "p-2"], existing, token="removed#k")
    assert p.done_before == {"p-1": T1} and p.changed == ["p-2"] and p.delta == -1


@given(
    st.lists(st.sampled_from([f"p-{i}" for i in range(12)]), unique=True),
    st.text(min_size=1, max_size=40).filter(lambda k: k != "req_old"),
    st.sampled_from(["added", "removed"]),
)
def test_a_retry_of_the_same_operation_changes_nothing_more(pids: list[str], key: str, change: str) -> None:
    """Whatever a first attempt wrote, a second attempt with its token sees as done, never again."""
    existing = {p: stored(p, active=i % 2 == 0) for i, p in enumerate(pids[: len(pids) // 2])}
    first = plan_of(change, pids, existing, token=f"{change}#{key}", at=T1)
    after = {**existing, **{w["minerva_pid"]: w for w in first.writes}}
    again = plan_of(change, pids, after, token=f"{change}#{key}")
    assert again.delta == 0 and again.changed == []
    assert again.done_before == dict.fromkeys(first.changed, T1)
    assert {w["minerva_pid"] for w in again.writes}.isdisjoint(first.changed)


# ------------------------------------------------------------------ screening and the ledger


def test_screen_splits_distinct_pids_in_first_seen_order() -> None:
    assert screen(["p-2", "bad", "p-1", "p-2", "bad", "P-3", "p-1"]) == (["p-2", "p-1"], ["bad", "P-3"])
    assert screen([]) == ([], [])
    assert dedupe(["b", "a", "b"]) == ["b", "a"]


def test_to_log_names_changes_and_unlogged_earlier_changes_in_request_order() -> None:
    p = planning.Plan(changed=["p-3", "p-1"], done_before={"p-2": T1, "p-4": T1}, redundant=1)
    assert to_log(["p-1", "p-2", "p-3", "p-4", "p-5"], p, logged={"p-4"}) == ["p-1", "p-2", "p-3"]
    assert to_log(["p-5"], p, logged=set()) == []


def test_ledger_entries_chunk_and_number_from_first_n() -> None:
    pids = [f"p-{i}" for i in range(2 * planning.LEDGER_CHUNK + 1)]
    entries = ledger_entries(change="removed", pids=pids, at=T1, request_id="req_x", reason="api", first_n=3)
    assert [e["n"] for e in entries] == [3, 4, 5]
    assert [len(e["pids"]) for e in entries] == [planning.LEDGER_CHUNK, planning.LEDGER_CHUNK, 1]
    assert all(e.keys() == {"n", "change", "pids", "at", "api_request_id", "reason"} for e in entries)
    assert {(e["change"], e["at"], e["api_request_id"], e["reason"]) for e in entries} == {
        ("removed", T1, "req_x", "api")
    }
    assert ledger_entries(change="added", pids=[], at=T1, request_id="r", reason="api") == []
    exact = ledger_entries(change="added", pids=pids[: planning.LEDGER_CHUNK], at=T1, request_id="r", reason="api")
    assert len(exact) == 1


@given(st.integers(min_value=0, max_value=3 * planning.LEDGER_CHUNK), st.integers(min_value=0, max_value=50))
def test_ledger_entries_hold_every_pid_once_in_order(n: int, first_n: int) -> None:
    pids = [f"p-{i}" for i in range(n)]
    entries = ledger_entries(change="added", pids=pids, at=T1, request_id="r", reason="rule", first_n=first_n)
    assert [p for e in entries for p in e["pids"]] == pids
    assert [e["n"] for e in entries] == list(range(first_n, first_n + len(entries)))
    assert all(0 < len(e["pids"]) <= planning.LEDGER_CHUNK for e in entries)
