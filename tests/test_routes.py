"""Every route in template.yaml reaches a handler whose resolver serves that path and method."""

from __future__ import annotations

import json
import re

import pytest

from conftest import LambdaContext, apigw_event, function_handler, response_headers, template
from tools import cfn

ROUTES = cfn.api_routes(template())
SAMPLE = {"segment_id": "3f1e2d4c-5b6a-4789-8abc-0123456789ab", "bucket": "org-a"}


def concrete(path: str) -> tuple[str, dict[str, str]]:
    params = {name: SAMPLE.get(name, "x") for name in re.findall(r"\{(\w+)\}", path)}
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path), params


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_is_served_by_its_function(aws: None, route: cfn.Route) -> None:
    methods = ["GET", "PUT", "PATCH", "DELETE"] if route.method == "ANY" else [route.method]
    path, params = concrete(route.path)
    for method in methods:
        event = apigw_event(method, path, resource=route.path, body={}, path_params=params or None,
                            headers={"content-type": "application/json"},
                            authorizer={"org_id": "org-a", "bucket": "org-a", "key_id": "key_test"})
        result = function_handler(route.function)(event, LambdaContext())
        body = json.loads(result["body"])
        assert response_headers(result)["x-api-request-id"].startswith("req_")
        # the resolver's own fallback means the function does not know the route
        assert body.get("error") not in ("Not Found", "Not found"), f"{route.function} does not serve {method} {path}"
        assert result["statusCode"] < 500, result["body"]


def test_every_api_function_is_behind_an_authorizer() -> None:
    for route in ROUTES:
        assert route.authorizer, f"{route.method} {route.path} is open"
