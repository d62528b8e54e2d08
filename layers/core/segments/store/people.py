"""People registry records: per org, one record per PID (attributes for rule segments)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segments.store import keys
from segments.store.dynamo import batch_get, call, from_item, table, to_item


def registered(org_id: str, pids: Sequence[str]) -> set[str]:
    """The PIDs among `pids` that have a record in the org's people registry."""
    found = batch_get([keys.person_key(org_id, pid) for pid in pids], projection="sk", consistent=False)
    return {keys.pid_of(from_item(i)["sk"]) for i in found}


def put(org_id: str, pid: str, attrs: dict[str, Any] | None = None) -> None:
    """Create or replace a record (seeding and tests; the registry gets its own writer with person events)."""
    item = {
        **(attrs or {}),
        "pk": keys.people_pk(org_id),
        "sk": keys.pid_sk(pid),
        "org_id": org_id,
        "minerva_pid": pid,
        "gsi3pk": keys.holders_all_orgs_pk(pid),
        "gsi3sk": keys.person_gsi3_sk(org_id),
    }
    call("put_item", TableName=table(), Item=to_item(item))


def profile_times(org_id: str, pids: Sequence[str]) -> dict[str, str]:
    """PID -> `profile_observed_at` of the org's records among `pids` that hold a profile (what a
    profile event must not be older than to apply; segments-admin's --check)."""
    names = {"#sk": "sk", "#obs": "profile_observed_at"}
    found = batch_get(
        [keys.person_key(org_id, pid) for pid in dict.fromkeys(pids)], projection="#sk, #obs", names=names
    )
    held = [i for i in found if "profile_observed_at" in i]
    return {keys.pid_of(str(i["sk"]["S"])): str(i["profile_observed_at"]["S"]) for i in held}
