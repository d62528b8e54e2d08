"""The local stack's pure parts: IAM policy evaluation, the VTL subset of gateway responses,
route precedence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools import local_stack
from tools.local_stack import evaluate_policy, policy_allows, render_vtl

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- pure parts


def test_policy_evaluation_wildcards_and_deny() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/segments/v2/demo/create"

    def doc(*statements: dict[str, Any]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": list(statements)}

    def allow(resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
        return {"Effect": "Allow", "Action": action, "Resource": resource}

    prefix = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    assert policy_allows(doc(allow(f"{prefix}/*/segments/v2/demo/*")), arn)
    assert not policy_allows(doc(allow(f"{prefix}/*/segments/v2/other/*")), arn)
    assert policy_allows(doc(allow([f"{prefix}/GET/*", f"{prefix}/P?ST/segments/*"])), arn)
    assert not policy_allows(doc(allow(f"{prefix}/P?T/segments/*")), arn)
    assert policy_allows(doc(allow("*", action="execute-api:*")), arn)
    assert policy_allows(doc(allow("*", action=["s3:GetObject", "EXECUTE-API:invoke"])), arn)
    assert not policy_allows(doc(allow("*", action="s3:*")), arn)
    assert not policy_allows(doc(), arn)
    # Deny wins over Allow, whatever the order; a single statement may be a bare object.
    deny = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{prefix}/POST/*"}
    assert evaluate_policy(doc(allow("*"), deny), arn) == "Deny"
    assert evaluate_policy(doc(deny, allow("*")), arn) == "Deny"
    assert evaluate_policy({"Statement": allow(arn)}, arn) == "Allow"
    assert evaluate_policy(doc(allow(f"{prefix}/GET/*")), arn) is None


def test_core_policies_scope_the_bucket() -> None:
    """The core's authorizer policies, read the way the gateway reads them."""
    auth = pytest.importorskip("segments.auth")
    principal = auth.Principal(key_id="key_1", org_id="org-a", bucket="org-a")
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/{}"
    sheep = auth.sheep_policy(principal, arn.format("POST/segments/v2/org-a/create"))["policyDocument"]
    assert policy_allows(sheep, arn.format("POST/segments/v2/org-a/create"))
    assert policy_allows(sheep, arn.format("GET/segments/v2/org-a"))
    assert not policy_allows(sheep, arn.format("POST/segments/v2/org-b/create"))
    assert not policy_allows(sheep, arn.format("POST/segments/v2/org-a-x/create"))
    minerva = auth.minerva_policy(principal, arn.format("POST/v2/segments/create"))["policyDocument"]
    assert policy_allows(minerva, arn.format("GET/v2/segments/abc/history"))
    assert policy_allows(minerva, arn.format("DELETE/v1/segments/create"))


def test_vtl_subset() -> None:
    variables = {
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "error.message": "Unauthorized",
        "error.messageString": '"Unauthorized"',
    }
    template = (
        '{"id": "req_$context.requestId.replace(\'-\', \'\')", "m": $context.error.messageString, '
        '"raw": "${context.error.message}", "up": "$context.error.message.toUpperCase()", '
        '"chain": "$context.requestId.replace("-", "").toUpperCase()", "keep": "$context.nope $input.body"}'
    )
    assert json.loads(render_vtl(template, variables)) == {
        "id": "req_c6af9ac67b6111e69a4193e8deadbeef",
        "m": "Unauthorized",
        "raw": "Unauthorized",
        "up": "UNAUTHORIZED",
        "chain": "C6AF9AC67B6111E69A4193E8DEADBEEF",
        "keep": "$context.nope $input.body",
    }


def test_router_precedence() -> None:
    from tools import cfn

    def route(path: str, method: str, function: str, api: str = "A") -> cfn.Route:
        return cfn.Route(api, path, method, function, "src/", "app.handler", None)

    router = local_stack.Router(
        [
            route("/items/{id}", "GET", "get_item"),
            route("/items/{id}", "ANY", "any_item"),
            route("/items/special", "GET", "special"),
            route("/files/{path+}", "ANY", "files"),
            route("/files/readme", "GET", "readme"),
            route("/other/{bucket}/create", "POST", "other", api="B"),
        ],
        ["A", "B"],
    )

    def match(method: str, path: str) -> tuple[str, dict[str, str]] | None:
        found = router.match(method, path)
        return (found[0].function, found[1]) if found else None

    assert match("GET", "/items/special") == ("special", {})
    assert match("GET", "/items/7") == ("get_item", {"id": "7"})
    assert match("DELETE", "/items/7") == ("any_item", {"id": "7"})
    assert match("POST", "/items/special") is None  # the static resource has no POST
    assert match("GET", "/files/a/b/c.txt") == ("files", {"path": "a/b/c.txt"})
    assert match("GET", "/files/readme") == ("readme", {})
    assert match("GET", "/files") is None
    assert match("GET", "/items/a%2Fb/") == ("get_item", {"id": "a/b"})
    assert router.api_for("/other/x/unknown") == "B"
    assert router.api_for("/nowhere") == "A"
    assert router.api_for("/") == "A"
