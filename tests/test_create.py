"""POST /v2/segments/create, every row of the table in docs/api.md#minerva-create, through the authorizer."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers.assertions import REQ_ID, TIME_Z, assert_error
from helpers.faults import THROTTLED, inject
from helpers.raw_table import raw_item, raw_segment

from conftest import Api, LambdaContext, Org, apigw_event, function_handler, make_org
from segments.store import segments as segment_store

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CREATE = "/v2/segments/create"


def stored_segment(org: Org, segment_id: str) -> dict:
    segment = segment_store.get_live(org.org_id, segment_id)
    assert segment is not None
    return segment


def test_create_returns_the_seed_body_and_stores_an_empty_api_segment(api: Api, org: Org) -> None:
    resp = api.post(CREATE, key=org.key, body={"name": "Q1 2024 Enterprise Prospects", "description": "500+ staff"})
    assert resp.status == 200, resp.text
    body = resp.json
    assert set(body) == {"api_request_id", "segment_id", "request_completed_at"}
    assert REQ_ID.match(body["api_request_id"]) and resp.headers["x-api-request-id"] == body["api_request_id"]
    assert UUID4.match(body["segment_id"])
    assert TIME_Z.match(body["request_completed_at"])

    segment = stored_segment(org, body["segment_id"])
    assert segment["name"] == "Q1 2024 Enterprise Prospects"
    assert segment["description"] == "500+ staff"
    assert segment["current_size"] == 0
    assert segment["source"] == "api"
    assert segment["record_state"] == "active"
    assert segment["org_id"] == org.org_id and segment["bucket"] == org.bucket
    # fields later capabilities need are there from the start
    for name in ("segment_type", "rules", "tags", "created_at", "updated_at", "uris_include"):
        assert name in segment, name
    assert segment.get("parent_segment") is None

    assert raw_segment(org.org_id, body["segment_id"])["name"] == "Q1 2024 Enterprise Prospects"
    lock = raw_item({"pk": {"S": f"ORG#{org.org_id}"}, "sk": {"S": "NAME#q1 2024 enterprise prospects"}})
    assert lock is not None and lock["segment_id"] == body["segment_id"]
    assert TIME_Z.match(segment["created_at"]) and segment["created_at"] == segment["updated_at"]


def test_description_is_optional_and_may_be_null(api: Api, org: Org) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "a"}).status == 200
    resp = api.post(CREATE, key=org.key, body={"name": "b", "description": None})
    assert resp.status == 200
    assert stored_segment(org, resp.json["segment_id"]).get("description") is None


def test_duplicate_name_is_404_with_the_seed_message(api: Api, org: Org) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "Q1 2024 Enterprise Leads"}).status == 200
    resp = api.post(CREATE, key=org.key, body={"name": "Q1 2024 Enterprise Leads"})
    assert_error(resp, 404, "Segment name Q1 2024 Enterprise Leads already exists")


@pytest.mark.parametrize("variant", ["  Leads  ", "LEADS", "leads", "Le\u0061\u0064s"])
def test_uniqueness_compares_trimmed_nfc_casefolded_names(api: Api, org: Org, variant: str) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "Leads"}).status == 200
    assert api.post(CREATE, key=org.key, body={"name": variant}).status == 404


def test_nfc_normalisation_makes_composed_and_decomposed_names_equal(api: Api, org: Org) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "Caf\u00e9"}).status == 200
    assert api.post(CREATE, key=org.key, body={"name": "Cafe\u0301"}).status == 404


def test_stored_name_keeps_the_callers_spelling(api: Api, org: Org) -> None:
    resp = api.post(CREATE, key=org.key, body={"name": "  MiXeD Case  "})
    assert stored_segment(org, resp.json["segment_id"])["name"] == "MiXeD Case"


def test_same_name_in_two_orgs_is_fine(api: Api, org: Org, other_org: Org) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "Shared"}).status == 200
    assert api.post(CREATE, key=other_org.key, body={"name": "Shared"}).status == 200


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_v1_is_404_for_any_method(api: Api, org: Org, method: str) -> None:
    resp = api.request(method, "/v1/segments/create", key=org.key, body={"name": "x"})
    assert_error(resp, 404, "Segments create endpoint only supports v2 API version")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405(api: Api, org: Org, method: str) -> None:
    resp = api.request(method, CREATE, key=org.key)
    assert_error(resp, 405, "Method Not Allowed")
    assert resp.headers.get("Allow") == "POST"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"a string"', "42", "null", "", "{", None])
def test_body_not_a_json_object_is_422(api: Api, org: Org, body: str | None) -> None:
    resp = api.post(CREATE, key=org.key, body=body)
    assert_error(resp, 422, "Request body must be a JSON object")


def test_missing_name_is_422_with_the_seed_message(api: Api, org: Org) -> None:
    body = assert_error(
        api.post(CREATE, key=org.key, body={"description": "x"}), 422, "Input data must contain a 'name' field"
    )
    assert body["details"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    "payload",
    [
        {"name": 5},
        {"name": None},
        {"name": ["a"]},
        {"name": True},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": "ok", "description": 7},
        {"name": "ok", "description": "d" * 5000},
    ],
)
def test_wrong_types_empty_or_overlong_are_422_naming_the_field(api: Api, org: Org, payload: dict) -> None:
    body = assert_error(api.post(CREATE, key=org.key, body=payload), 422)
    bad_field = "description" if "description" in payload else "name"
    assert bad_field in body["error"]
    assert body["details"] and all({"loc", "msg", "type"} <= set(d) for d in body["details"])


def test_255_characters_after_trimming_is_accepted(api: Api, org: Org) -> None:
    assert api.post(CREATE, key=org.key, body={"name": "  " + "x" * 255 + "  "}).status == 200


def test_body_without_json_content_type_is_still_read_as_json(api: Api, org: Org) -> None:
    resp = api.post(
        CREATE, key=org.key, body={"name": "curl -d"}, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 200, resp.text


def test_unexpected_error_is_500_without_internals(api: Api, org: Org) -> None:
    with inject(
        "TransactWriteItems", "ValidationException", message="table SegmentsTable exploded at storage.py line 1"
    ) as fault:
        resp = api.post(CREATE, key=org.key, body={"name": "x"})
    assert fault.hits == 1  # not retried: only throttling is
    body = assert_error(resp, 500, "Internal server error")
    assert set(body) == {"error", "status_code", "api_request_id"}
    assert "SegmentsTable" not in resp.text and "Traceback" not in resp.text


@pytest.mark.usefixtures("no_backoff")
def test_throttled_store_is_503_with_retry_after(api: Api, org: Org) -> None:
    with inject("TransactWriteItems", THROTTLED) as fault:
        resp = api.post(CREATE, key=org.key, body={"name": "x"})
    assert fault.hits > 1  # retried before giving up
    assert_error(resp, 503)
    assert int(resp.headers["Retry-After"]) >= 1


# ------------------------------------------------------------------ auth and tenancy


@pytest.mark.parametrize("key", [None, "", "sk_seg_not-a-real-key"])
def test_missing_or_unknown_key_is_401(api: Api, org: Org, key: str | None) -> None:
    resp = api.post(CREATE, key=key, body={"name": "x"})
    assert resp.status == 401


def test_authorizer_rejects_unknown_and_revoked_keys_with_unauthorized(aws: None) -> None:
    from segments import auth

    handler = function_handler("ApiKeyAuthorizerFunction")
    created = auth.create_api_key("org-r", "org-r")
    event = {
        **apigw_event("POST", CREATE, headers={"x-api-key": created.api_key}),
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/v1/POST/v2/segments/create",
    }
    policy = handler(event, LambdaContext())
    assert policy["context"] == {"org_id": "org-r", "bucket": "org-r", "key_id": created.key_id}
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert "arn:aws:execute-api:us-east-1:123456789012:abc/v1/*/v2/*" in statement["Resource"]

    auth.revoke_api_key(created.key_id)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        handler(event, LambdaContext())
    event["headers"] = {"x-api-key": "nope"}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        handler(event, LambdaContext())


def test_revoked_key_gets_401(api: Api, org: Org) -> None:
    from segments import auth

    auth.revoke_api_key(org.key_id)
    assert api.post(CREATE, key=org.key, body={"name": "x"}).status == 401


def test_only_a_hash_of_the_key_is_stored(aws: None) -> None:
    import boto3

    from segments import auth

    created = auth.create_api_key("org-h", "org-h")
    items = boto3.client("dynamodb").scan(TableName="SegmentsTable")["Items"]
    assert items and created.api_key not in json.dumps(items)
    assert auth.hash_key(created.api_key) in json.dumps(items)
    assert len(created.api_key) - len(auth.KEY_PREFIX) >= 40  # ≥ 160 bits of randomness


def test_org_comes_from_the_authorizer_never_from_the_body(api: Api, org: Org, other_org: Org) -> None:
    resp = api.post(CREATE, key=org.key, body={"name": "mine", "org_id": other_org.org_id})
    assert resp.status == 200
    assert segment_store.get_live(org.org_id, resp.json["segment_id"]) is not None
    assert segment_store.get_live(other_org.org_id, resp.json["segment_id"]) is None


def test_function_refuses_an_event_without_authorizer_context(aws: None) -> None:
    event = apigw_event("POST", CREATE, body={"name": "x"}, headers={"content-type": "application/json"})
    result = function_handler("CreateSegmentFunction")(event, LambdaContext())
    assert result["statusCode"] == 401


# ------------------------------------------------------------------ concurrency and retries


def test_fifty_concurrent_creates_of_one_name_give_one_200_and_49_404(api: Api, org: Org) -> None:
    barrier = threading.Barrier(50)

    def create(_: int) -> int:
        barrier.wait()
        return api.post(CREATE, key=org.key, body={"name": "Contended"}).status

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(create, range(50)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(404) == 49, statuses


def test_concurrent_creates_of_different_names_all_succeed(api: Api, org: Org) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda i: api.post(CREATE, key=org.key, body={"name": f"n{i}"}).status, range(40)))
    assert statuses == [200] * 40


def test_idempotency_key_replays_the_first_response(api: Api, org: Org) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = api.post(CREATE, key=org.key, body={"name": "Once"}, headers=headers)
    again = api.post(CREATE, key=org.key, body={"name": "Once"}, headers=headers)
    assert first.status == again.status == 200
    assert again.json == first.json
    # without the key, the same body is a duplicate
    assert api.post(CREATE, key=org.key, body={"name": "Once"}).status == 404


def test_idempotency_key_with_another_body_is_422(api: Api, org: Org) -> None:
    headers = {"Idempotency-Key": "create-2"}
    assert api.post(CREATE, key=org.key, body={"name": "One"}, headers=headers).status == 200
    resp = api.post(CREATE, key=org.key, body={"name": "Two"}, headers=headers)
    assert_error(resp, 422)
    assert "Idempotency-Key" in resp.json["error"]


def test_idempotency_keys_are_scoped_per_org(api: Api, org: Org, other_org: Org) -> None:
    headers = {"Idempotency-Key": "same-key"}
    a = api.post(CREATE, key=org.key, body={"name": "A"}, headers=headers)
    b = api.post(CREATE, key=other_org.key, body={"name": "B"}, headers=headers)
    assert a.status == b.status == 200 and a.json["segment_id"] != b.json["segment_id"]


def test_overlong_idempotency_key_is_422(api: Api, org: Org) -> None:
    resp = api.post(CREATE, key=org.key, body={"name": "A"}, headers={"Idempotency-Key": "k" * 256})
    assert_error(resp, 422)


@pytest.mark.usefixtures("no_backoff")
def test_a_failed_create_can_be_retried_with_the_same_key(api: Api, org: Org) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    with inject("TransactWriteItems", THROTTLED):
        assert api.post(CREATE, key=org.key, body={"name": "Flaky"}, headers=headers).status == 503
    ok = api.post(CREATE, key=org.key, body={"name": "Flaky"}, headers=headers)
    assert ok.status == 200
    assert api.post(CREATE, key=org.key, body={"name": "Flaky"}, headers=headers).json == ok.json


def test_many_orgs_never_see_each_others_segments(aws: None) -> None:
    orgs = [make_org(f"org-{i}", f"bucket-{i}") for i in range(3)]
    api = Api()
    ids = {o.org_id: api.post(CREATE, key=o.key, body={"name": "Same"}).json["segment_id"] for o in orgs}
    for o in orgs:
        for other, segment_id in ids.items():
            assert (segment_store.get_live(o.org_id, segment_id) is not None) == (other == o.org_id)
