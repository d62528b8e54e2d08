"""Every route in template.yaml reaches a handler whose resolver serves that path and method."""

from __future__ import annotations

import json
import re

import pytest

from conftest import LambdaContext, apigw_event, function_handler, response_headers, template
from tools import cfn

ROUTES = cfn.api_routes(template())
SAMPLE = {"segment_id": "3f1e2d4c-5b6a-4789-8abc-0123456789ab", "bucket": "org-a"}
# What each route answers to the sample request (body {}, no query, an empty table).
EXPECTED = {
    ("POST", "/v2/segments/create"): 422,  # no name
    ("GET", "/v2/segments/create"): 405,
    ("PUT", "/v2/segments/create"): 405,
    ("PATCH", "/v2/segments/create"): 405,
    ("DELETE", "/v2/segments/create"): 405,
    ("GET", "/v1/segments/create"): 404,  # only v2
    ("PUT", "/v1/segments/create"): 404,
    ("PATCH", "/v1/segments/create"): 404,
    ("DELETE", "/v1/segments/create"): 404,
    ("POST", "/v2/segments/members/add"): 422,  # no segment_id
    ("POST", "/v2/segments/members/remove"): 422,
    ("GET", "/v2/segments/members"): 422,  # segment_id is a required parameter
    ("GET", "/v2/segments"): 200,  # an empty list
    ("GET", "/v2/segments/{segment_id}"): 404,  # no such segment
    ("GET", "/v2/segments/memberships"): 422,  # minerva_pid is a required parameter
    ("GET", "/v2/segments/{segment_id}/history"): 404,
    ("PATCH", "/v2/segments/{segment_id}"): 422,  # nothing to update
    ("DELETE", "/v2/segments/{segment_id}"): 404,
    ("POST", "/segments/v2/{bucket}/create"): 400,  # SheepCRM's validation error
    ("GET", "/segments/v2/{bucket}"): 200,  # an empty page
    ("GET", "/segments/v2/{bucket}/all"): 200,
    ("GET", "/segments/v2/{bucket}/find"): 400,  # name is a required parameter
    ("GET", "/segments/v2/{bucket}/trees"): 200,  # no trees
    ("GET", "/segments/v2/{bucket}/{view_context}"): 400,  # "x" is not a view context
    ("GET", "/segments/v2/{bucket}/segment/{uid}/count"): 404,  # the sample uid "x" names no segment
    ("GET", "/segments/v2/{bucket}/segment/{uid}/all"): 404,
    ("PUT", "/segments/v2/{bucket}/segment/{uid}"): 404,
    ("DELETE", "/segments/v2/{bucket}/segment/{uid}"): 404,
    ("POST", "/segments/v2/{bucket}/segment/{uid}/restore"): 404,
    ("GET", "/segments/v2/{bucket}/segment/{uid}/config"): 404,
    ("GET", "/segments/v2/{bucket}/segment/{uid}/lookup"): 400,  # q is a required parameter
    ("GET", "/segments/v2/{bucket}/segment/{uid}/signals"): 400,  # type is a required parameter
    ("GET", "/segments/v2/{bucket}/notification/{uid}"): 404,
    ("POST", "/segments/v2/{bucket}/segment/{uid}/action/delete"): 404,
    ("POST", "/segments/v2/{bucket}/segment/{uid}/action/replace"): 404,
    ("GET", "/segments/v2/{bucket}/segment/{uid}/all/sync_mailchimp"): 404,
    ("GET", "/v2/segments/signals/deaths"): 422,  # segment_id is a required parameter
    ("GET", "/v2/segments/signals/job_changes"): 422,
    ("GET", "/v2/segments/signals/relocations"): 422,
    # webhooks: the sample id "x" names none; a create or replay without its fields is 422
    ("POST", "/v2/webhooks"): 422,
    ("GET", "/v2/webhooks"): 200,
    ("GET", "/v2/webhooks/{webhook_id}"): 404,
    ("PATCH", "/v2/webhooks/{webhook_id}"): 404,
    ("DELETE", "/v2/webhooks/{webhook_id}"): 404,
    ("POST", "/v2/webhooks/{webhook_id}/rotate-secret"): 404,
    ("POST", "/v2/webhooks/{webhook_id}/test"): 404,
    ("GET", "/v2/webhooks/{webhook_id}/deliveries"): 404,
    ("POST", "/v2/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): 404,
    ("POST", "/v2/webhooks/{webhook_id}/replay"): 422,
    # exports and fieldsets
    ("POST", "/v2/segments/exports"): 422,  # no segment_id, no format
    ("GET", "/v2/segments/exports"): 200,  # none yet
    ("GET", "/v2/segments/exports/{export_id}"): 404,
    ("GET", "/segments/v2/{bucket}/segment/{uid}/all/excel"): 404,  # the sample uid "x" names no segment
    ("GET", "/segments/v2/{bucket}/segment/{uid}/all/xlsx"): 404,
    ("GET", "/segments/v2/{bucket}/segment/{uid}/all/pdf"): 404,
    ("GET", "/segments/v2/{bucket}/journal/{uid}"): 404,
    ("GET", "/segments/v2/{bucket}/fieldset"): 200,  # none yet
    ("POST", "/segments/v2/{bucket}/fieldset"): 400,  # no field
    ("DELETE", "/segments/v2/{bucket}/fieldset"): 400,  # no uid
    ("GET", "/segments/v2/{bucket}/fieldset/{uid}"): 404,
    ("DELETE", "/segments/v2/{bucket}/fieldset/{uid}"): 404,
}


def concrete(path: str) -> tuple[str, dict[str, str]]:
    params = {name: SAMPLE.get(name, "x") for name in re.findall(r"\{(\w+)\}", path)}
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path), params


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_is_served_by_its_function(aws: None, route: cfn.Route) -> None:
    methods = ["GET", "PUT", "PATCH", "DELETE"] if route.method == "ANY" else [route.method]
    path, params = concrete(route.path)
    for method in methods:
        event = apigw_event(
            method,
            path,
            resource=route.path,
            body={},
            path_params=params or None,
            headers={"content-type": "application/json"},
            authorizer={"org_id": "org-a", "bucket": "org-a", "key_id": "key_test"},
        )
        result = function_handler(route.function)(event, LambdaContext())
        body = json.loads(result["body"])
        assert response_headers(result)["x-api-request-id"].startswith("req_")
        # the resolver's own fallback means the function does not know the route
        assert body.get("error") not in ("Not Found", "Not found"), f"{route.function} does not serve {method} {path}"
        assert (method, route.path) in EXPECTED, f"no expected status for {method} {route.path}"
        assert result["statusCode"] == EXPECTED[method, route.path], result["body"]


def test_every_api_function_is_behind_an_authorizer() -> None:
    for route in ROUTES:
        assert route.authorizer, f"{route.method} {route.path} is open"
