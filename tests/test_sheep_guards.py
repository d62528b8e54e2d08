"""What the SheepCRM functions guard themselves: the bucket of every route (even when the gateway
let the request through), strict booleans on update, a parent cycle closed by a concurrent move
between the walk and the commit, and members of system segments (a decision: allowed)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from helpers.assertions import assert_sheep_error
from helpers.members import add
from helpers.raw_table import raw_segment

from conftest import Api, LambdaContext, Org, apigw_event, function_handler
from segments import auth
from segments.models import Actor
from segments.usecases import segment_tree
from segments.usecases import segments as usecase

ROUTES = [
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}", None),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/all", None),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/find", {"name": "a"}),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/trees", None),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/{view_context}", None),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/segment/{uid}/count", None),
    ("SheepQueryFunction", "GET", "/segments/v2/{bucket}/segment/{uid}/all", None),
    ("SheepSegmentsFunction", "POST", "/segments/v2/{bucket}/create", None),
    ("SheepSegmentsFunction", "PUT", "/segments/v2/{bucket}/segment/{uid}", None),
    ("SheepSegmentsFunction", "DELETE", "/segments/v2/{bucket}/segment/{uid}", None),
    ("SheepSegmentsFunction", "POST", "/segments/v2/{bucket}/segment/{uid}/restore", None),
    ("SheepRecordsFunction", "GET", "/segments/v2/{bucket}/segment/{uid}/config", None),
    ("SheepRecordsFunction", "GET", "/segments/v2/{bucket}/segment/{uid}/lookup", {"q": "p-"}),
    ("SheepRecordsFunction", "GET", "/segments/v2/{bucket}/segment/{uid}/signals", {"type": "death"}),
    ("SheepRecordsFunction", "GET", "/segments/v2/{bucket}/notification/{uid}", None),
    ("SheepActionsFunction", "POST", "/segments/v2/{bucket}/segment/{uid}/action/delete", None),
    ("SheepActionsFunction", "POST", "/segments/v2/{bucket}/segment/{uid}/action/replace", None),
]


def create(api: Api, org: Org, name: str, **fields: Any) -> dict[str, Any]:
    resp = api.post(
        f"/segments/v2/{org.bucket}/create", bearer=org.key, body={"name": name, "resource_type": "person", **fields}
    )
    assert resp.status == 201, resp.text
    made: dict[str, Any] = resp.json
    return made


@pytest.mark.parametrize(("function", "method", "resource", "query"), ROUTES, ids=[f"{m} {r}" for _, m, r, _ in ROUTES])
@pytest.mark.parametrize("target", ["another org's bucket", "a bucket of no org"])
def test_every_route_checks_the_bucket_even_behind_the_gateway(
    api: Api, org: Org, other_org: Org, function: str, method: str, resource: str, query: Any, target: str
) -> None:
    """The function itself refuses a key of another bucket: the request reaches it directly (as if
    the gateway's cached policy had let it through), with a segment of the other org as the uid."""
    theirs = create(api, other_org, "Theirs", segment_type="auxiliary", view_context="crm")
    deleted = create(api, other_org, "Deleted", segment_type="static")
    assert api.delete(f"/segments/v2/{other_org.bucket}/segment/{deleted['uid']}", bearer=other_org.key).status == 200
    uid = deleted["uid"] if resource.endswith("restore") else theirs["uid"]
    bucket = other_org.bucket if target == "another org's bucket" else "elsewhere"
    params = {"bucket": bucket, "uid": uid, "view_context": "crm"}
    path = resource.format(**params)
    event = apigw_event(
        method,
        path,
        resource=resource,
        body={"name": "Mine now", "resource_type": "person"},
        query=query,
        path_params={k: v for k, v in params.items() if "{" + k + "}" in resource},
        headers={"content-type": "application/json"},
        authorizer={"org_id": org.org_id, "bucket": org.bucket, "key_id": org.key_id},
    )
    result = function_handler(function)(event, LambdaContext())
    assert result["statusCode"] == 403, result["body"]
    assert raw_segment(other_org.org_id, str(uuid.UUID(theirs["uid"])))["name"] == "Theirs"
    assert raw_segment(other_org.org_id, str(uuid.UUID(deleted["uid"])))["record_state"] == "deleted"
    assert api.get(f"/segments/v2/{org.bucket}/all", bearer=org.key).json["segments"] == []


@pytest.mark.parametrize("value", ["yes", "true", "false", 1, 0, "1"])
def test_update_takes_json_booleans_only(api: Api, org: Org, value: object) -> None:
    seg = create(api, org, "Strict", segment_type="static", active=False)
    for field in ("active", "mailchimp_sync", "system_segment"):
        resp = api.request(
            "PUT", f"/segments/v2/{org.bucket}/segment/{seg['uid']}", bearer=org.key, body={field: value}
        )
        body = assert_sheep_error(resp, 400, "validation_error")
        assert f"'{field}'" in body["description"]
    stored = raw_segment(org.org_id, str(uuid.UUID(seg["uid"])))
    assert stored["active"] is False and stored.get("mailchimp_sync", False) is False
    ok = api.request("PUT", f"/segments/v2/{org.bucket}/segment/{seg['uid']}", bearer=org.key, body={"active": True})
    assert ok.status == 200 and ok.json["active"] is True


def test_a_root_reads_as_empty_parent_and_sends_back_as_one(api: Api, org: Org) -> None:
    root = create(api, org, "Root", segment_type="auxiliary")
    child = create(api, org, "Child", segment_type="static", parent_segment=root["uri"])
    assert root["parent_segment"] == "" and child["parent_segment"] == root["uri"]
    moved = api.request(
        "PUT", f"/segments/v2/{org.bucket}/segment/{child['uid']}", bearer=org.key, body={**child, "parent_segment": ""}
    )
    assert moved.status == 200 and moved.json["parent_segment"] == ""
    assert "parent_segment" not in raw_segment(org.org_id, str(uuid.UUID(child["uid"])))
    also_root = create(api, org, "Also root", segment_type="static", parent_segment="")
    assert also_root["parent_segment"] == ""


# ------------------------------------------------------------------ a cycle closed meanwhile


def test_a_concurrent_move_between_the_walk_and_the_commit_cannot_close_a_cycle(
    api: Api, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a <- b and c <- d. Request 1 moves a under d: it walks d -> c -> (root) and finds no cycle.
    Before it commits, request 2 moves c under b. Were request 1 to commit on its walk, a -> d ->
    c -> b -> a would be a cycle; its commit is conditional on every ancestor's link being what the
    walk read, so it fails, walks again, and refuses the move."""
    a = create(api, org, "a", segment_type="auxiliary")
    b = create(api, org, "b", segment_type="auxiliary", parent_segment=a["uri"])
    c = create(api, org, "c", segment_type="auxiliary")
    d = create(api, org, "d", segment_type="auxiliary", parent_segment=c["uri"])
    who = Actor(org_id=org.org_id, bucket=org.bucket, request_id="req_meanwhile")
    walk = segment_tree.parent_chain
    walks: list[str] = []

    def walk_then_move(actor: Actor, segment_id: str | None, parent: str) -> list[tuple[str, str | None]]:
        walks.append(parent)
        chain = walk(actor, segment_id, parent)
        if len(walks) == 1:  # request 2, between request 1's walk and its commit
            monkeypatch.setattr(segment_tree, "parent_chain", walk)
            usecase.update_segment(who, c["uid"], {"parent_segment": b["uri"]})
            monkeypatch.setattr(segment_tree, "parent_chain", walk_then_move)
        return chain

    monkeypatch.setattr(segment_tree, "parent_chain", walk_then_move)
    resp = api.request(
        "PUT", f"/segments/v2/{org.bucket}/segment/{a['uid']}", bearer=org.key, body={"parent_segment": d["uri"]}
    )
    body = assert_sheep_error(resp, 400, "validation_error")
    assert "cycle" in body["description"]
    assert len(walks) == 2  # the first commit failed on the changed link; the second walk saw the cycle
    stored = {
        n: raw_segment(org.org_id, str(uuid.UUID(s["uid"]))).get("parent_segment")
        for n, s in zip("abcd", (a, b, c, d), strict=True)
    }
    assert stored == {"a": None, "b": a["uri"], "c": b["uri"], "d": c["uri"]}
    trees = api.get(f"/segments/v2/{org.bucket}/trees", bearer=org.key).json["segments"]
    assert [t["name"] for t in trees] == ["a"]


# ------------------------------------------------------------------ system segments' members


def test_members_of_a_system_segment_are_written_as_any_static_segments(api: Api, org: Org) -> None:
    """Decision (docs/decisions.md): a system segment itself can't be edited or deleted (403), but
    it is a static list whose members callers maintain: adding and removing members is allowed."""
    made = auth.create_system_segment(org.org_id, org.bucket, "All people", description="everyone")
    uid = uuid.UUID(made.segment_id).hex
    added = add(api, org, made.segment_id, ["p-1", "p-2"])
    assert added.status == 200 and added.json["results"]["n_added"] == 2
    count = api.get(f"/segments/v2/{org.bucket}/segment/{uid}/count", bearer=org.key)
    assert count.json["count"] == 2
    assert_sheep_error(
        api.request("PUT", f"/segments/v2/{org.bucket}/segment/{uid}", bearer=org.key, body={"name": "x"}),
        403,
        "permission_denied",
    )
    assert_sheep_error(api.delete(f"/segments/v2/{org.bucket}/segment/{uid}", bearer=org.key), 403, "permission_denied")
    assert api.patch(f"/v2/segments/{made.segment_id}", key=org.key, body={"name": "x"}).status == 403
