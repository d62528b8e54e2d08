"""Replay every events/ file (the ones `sam local invoke -e` takes) and check what it answers.

events/index.json says, per file, which function takes it, the status (or authorizer decision,
or for a queue or stream consumer the partial-batch failures) expected, and what must exist
first: segments (seed_segments, with any segment fields: a dynamic one is filed in the rule index,
one marked "deleted" is soft-deleted), members (seed_members, added through the API) and the demo
key the authorizer events carry (seed_demo_key).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conftest import ROOT, Api, LambdaContext, function_handler, response_headers
from segments import auth
from segments.external import plans
from segments.models import Segment, name_key
from segments.store import api_keys, rule_index
from segments.store import segments as segment_store
from segments.timefmt import iso, now
from segments.usecases.rule_definitions import Definition

EVENTS = ROOT / "events"
INDEX = json.loads((EVENTS / "index.json").read_text())
DEMO_ORG, DEMO_BUCKET = "demo-org", "demo"
DEMO_KEY = "sk_seg_demo_local_key_replace_me"


def test_every_event_file_is_indexed() -> None:
    files = {p.name for p in EVENTS.glob("*.json")} - {"index.json"}
    assert files == {entry["file"] for entry in INDEX}


def seed_demo_key() -> None:
    api_keys.put(
        {
            "key_id": "key_demo",
            "key_hash": auth.hash_key(DEMO_KEY),
            "org_id": DEMO_ORG,
            "bucket": DEMO_BUCKET,
            "label": "events",
            "status": "active",
            "created_at": iso(now()),
        }
    )
    plans.set_plan(DEMO_ORG, "pro")  # the demo org's usage plan key (the gateway refuses a key without one)


def seed(entry: dict[str, Any]) -> None:
    if entry.get("seed_demo_key") or entry.get("seed_members"):
        seed_demo_key()
    for spec in entry.get("seed_segments", []):
        at = iso(now())
        segment = Segment(**{**spec, "org_id": DEMO_ORG, "bucket": DEMO_BUCKET, "created_at": at, "updated_at": at})
        segment_store.put_with_name(segment.model_dump(), name_key(segment.name))
        definition = Definition.of_segment(segment.model_dump())
        if definition.indexed:  # as RuleMembershipFunction files a dynamic segment when it is created
            for field in sorted(definition.fields()):
                rule_index.put_entry(DEMO_ORG, field, segment.segment_id, definition.entry())
        if spec.get("deleted"):
            segment_store.delete(DEMO_ORG, segment.segment_id, name_key=name_key(segment.name), at=at)
    if entry.get("seed_members"):
        segment_id = entry["seed_segments"][0]["segment_id"]
        resp = Api().post(
            "/v2/segments/members/add",
            key=DEMO_KEY,
            body={"segment_id": segment_id, "minerva_pids": entry["seed_members"]},
        )
        assert resp.status == 200, resp.text


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_event_replays_with_the_expected_answer(aws: None, entry: dict[str, Any]) -> None:
    seed(entry)
    event = json.loads((EVENTS / entry["file"]).read_text())
    handler = function_handler(entry["function"])
    if "authorizer" in entry:
        if entry["authorizer"] == "unauthorized":
            with pytest.raises(Exception, match=r"^Unauthorized$"):
                handler(event, LambdaContext())
            return
        policy = handler(event, LambdaContext())
        assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        assert policy["context"]["org_id"] == DEMO_ORG
        return
    result = handler(event, LambdaContext())
    if "batch_item_failures" in entry:  # a queue or stream consumer: its partial-batch response
        assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(entry["batch_item_failures"])
        return
    assert result["statusCode"] == entry["status"], result.get("body")
    assert response_headers(result)["x-api-request-id"].startswith("req_")
    body = json.loads(result["body"])
    if entry["function"].startswith("Sheep") and entry["status"] >= 400:  # SheepCRM's error shape
        assert {"error", "description", "type"} <= set(body)
    elif entry["function"] == "SheepSegmentsFunction":  # SheepCRM's shape: the segment itself, as changed
        sent = json.loads(base64.b64decode(event["body"])) if event["body"] else {}
        assert body["name"] == sent.get("name", entry.get("seed_segments", [{}])[0].get("name"))
    elif entry["function"] == "SheepQueryFunction":  # SheepCRM's reads: a listing envelope, a count or trees
        if "page" in body:  # segments under the vendor's key; a segment's records under results
            listed = body["segments"] if "segments" in body else body["results"]
            assert body["page"] == 1 and len(listed) == body["count"] and body["next_page"] is None
        elif "count" in body:
            assert body["count"] == len(entry.get("seed_members", []))
        else:
            assert isinstance(body["segments"], list)
    elif entry["function"] == "SheepExportsFunction":  # SheepCRM's fieldsetList (a receipt needs a queue)
        assert isinstance(body["fieldsets"], list) and body["fieldsets"][0]["uid"] == "person"
    elif entry["function"] == "SheepRecordsFunction":  # a segment's config, a lookup list, its signals
        if isinstance(body, list):
            found = [i["minerva_pid"] for i in body]
            assert found and set(found) <= set(entry.get("seed_members", []))
        else:
            assert "mapping" in body or isinstance(body["results"], list)
    else:
        assert body["api_request_id"] == response_headers(result)["x-api-request-id"]
        assert body.get("status_code", 200) == entry["status"]
