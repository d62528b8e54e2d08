"""Pure membership planning: what an add or remove changes, given the stored memberships.
No I/O: unit-tested in milliseconds (tests/unit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from segments.models import is_valid_pid

Change = Literal["added", "removed"]
LEDGER_CHUNK = 1_000  # PIDs per ledger entry (a 66-character PID: ~70 KB, far below 400 KB)


@dataclass
class Plan:
    """Member records to write, and how each PID was classified."""

    writes: list[dict[str, Any]] = field(default_factory=list)  # member records (MEMBER_FIELDS + ids)
    changed: list[str] = field(default_factory=list)  # changed by this execution
    done_before: dict[str, str] = field(default_factory=dict)  # pid -> `at` of an earlier attempt
    redundant: int = 0
    delta: int = 0


def dedupe(pids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(pids))


def screen(pids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(valid, invalid) distinct PIDs, in first-seen order."""
    unique = dedupe(pids)
    return [p for p in unique if is_valid_pid(p)], [p for p in unique if not is_valid_pid(p)]


def plan(
    *,
    org_id: str,
    segment_id: str,
    pids: Sequence[str],
    existing: Mapping[str, Mapping[str, Any]],
    change: Change,
    token: str,
    at: str,
) -> Plan:
    """Classify each PID against its stored membership and build the member records to write.

    `token` names the operation ("{change}#{Idempotency-Key or request id}"): a member whose
    last_op carries it was changed by an earlier attempt of this very request, not again."""
    result = Plan()
    base = {"org_id": org_id, "segment_id": segment_id}
    last_op = f"{token}@{at}"
    for pid in pids:
        member = existing.get(pid)
        active = bool(member and member.get("active"))
        op, _, op_at = str((member or {}).get("last_op", "")).rpartition("@")
        mine = op == token
        if change == "added":
            if member is not None and active and mine:
                result.done_before[pid] = op_at
            elif active:
                result.redundant += 1
                result.writes.append({**(member or {}), **base, "minerva_pid": pid, "last_added_at": at})
            else:
                result.changed.append(pid)
                result.delta += 1
                result.writes.append(
                    {
                        **(member or {}),
                        **base,
                        "minerva_pid": pid,
                        "active": True,
                        "first_added_at": (member or {}).get("first_added_at") or at,
                        "last_added_at": at,
                        "last_op": last_op,
                    }
                )
        elif member is not None and active:
            result.changed.append(pid)
            result.delta -= 1
            result.writes.append(
                {**member, **base, "minerva_pid": pid, "active": False, "removed_at": at, "last_op": last_op}
            )
        elif member is not None and mine:
            result.done_before[pid] = op_at
    return result


def to_log(pids: Sequence[str], plan: Plan, logged: set[str]) -> list[str]:
    """PIDs for this request's ledger: its changes, plus what an interrupted attempt changed but
    did not log (`logged`: what that attempt's ledger entries already name)."""
    changed = set(plan.changed)
    return [p for p in pids if p in changed or (p in plan.done_before and p not in logged)]


def ledger_entries(
    *, change: Change, pids: Sequence[str], at: str, request_id: str, reason: str, first_n: int = 0
) -> list[dict[str, Any]]:
    """The ledger entries of one change: one per LEDGER_CHUNK PIDs, numbered from `first_n`."""
    return [
        {
            "n": first_n + n,
            "change": change,
            "pids": list(pids[i : i + LEDGER_CHUNK]),
            "at": at,
            "api_request_id": request_id,
            "reason": reason,
        }
        for n, i in enumerate(range(0, len(pids), LEDGER_CHUNK))
    ]
