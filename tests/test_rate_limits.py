"""Per-org rate limits and quotas: usage plans, one API Gateway key per org named by the
authorizers (API key source AUTHORIZER), 429 in each surface's body with Retry-After."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from conftest import REGION, Api, make_org, template
from segments import auth
from segments.cli import admin
from segments.external import plans
from segments.store import api_keys
from tools import cfn
from tools.local_stack.usage_plans import UsagePlans

MINERVA_KEYS = {"error", "status_code", "api_request_id"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frozen_api() -> tuple[Api, Clock]:
    """A gateway whose token buckets refill only when the test moves the clock."""
    api, clock = Api(), Clock()
    api.gateway.usage_plans = UsagePlans(clock=clock)
    return api, clock


def plan_limits() -> dict[str, Any]:
    return {name: spec["throttle"] for name, spec in cfn.usage_plan_specs(template()).items()}


def test_one_org_past_its_burst_is_throttled_while_another_is_not(aws: None) -> None:
    standard, pro = make_org("org-s", "org-s", plan="standard"), make_org("org-p", "org-p", plan="pro")
    burst = plan_limits()["StandardUsagePlan"]["burstLimit"]
    assert burst < plan_limits()["ProUsagePlan"]["burstLimit"]
    api, clock = frozen_api()

    statuses = [api.get("/v2/segments", key=standard.key).status for _ in range(burst + 3)]
    assert statuses == [200] * burst + [429] * 3
    # the other org, on its own bucket, is not held back at all
    assert {api.get("/v2/segments", key=pro.key).status for _ in range(burst + 3)} == {200}

    throttled = api.get("/v2/segments", key=standard.key)
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "1"
    body = throttled.json
    assert set(body) == MINERVA_KEYS and body["status_code"] == 429
    assert body["api_request_id"] == throttled.headers["x-api-request-id"]
    # the org's bucket is one for both APIs (one API Gateway key per org)
    sheep = api.get("/segments/v2/org-s", bearer=standard.key)
    assert sheep.status == 429 and sheep.headers["Retry-After"] == "1"
    assert sheep.json["type"] == "rate_limited" and set(sheep.json) == {"error", "description", "type"}

    clock.now += 1.0  # a second refills `rate` tokens
    rate = int(plan_limits()["StandardUsagePlan"]["rateLimit"])
    assert [api.get("/v2/segments", key=standard.key).status for _ in range(rate + 1)] == [200] * rate + [429]


def test_every_key_of_an_org_shares_the_org_bucket(aws: None) -> None:
    org = make_org("org-s", "org-s", plan="standard")
    second = auth.create_api_key("org-s", "org-s", label="second")
    plans.set_plan("org-s", "standard")  # names the gateway key on the new key too
    burst = plan_limits()["StandardUsagePlan"]["burstLimit"]
    api, _ = frozen_api()
    statuses = [api.get("/v2/segments", key=k).status for _ in range(burst // 2 + 1) for k in (org.key, second.api_key)]
    assert statuses.count(429) == 2 and statuses.count(200) == burst


def test_a_new_plan_takes_effect_with_the_same_gateway_key(aws: None) -> None:
    org = make_org("org-s", "org-s", plan="standard")
    gateway_key = plans.ensure_gateway_key("org-s")
    moved = plans.set_plan("org-s", "pro")
    assert moved.gateway_key_id == gateway_key and plans.current_plan("org-s") == "pro"
    client = boto3.client("apigateway", region_name=REGION)
    [plan] = client.get_usage_plans(keyId=gateway_key)["items"]
    assert plan["name"] == "ProUsagePlan"
    api, _ = frozen_api()
    burst = plan_limits()["StandardUsagePlan"]["burstLimit"]
    assert {api.get("/v2/segments", key=org.key).status for _ in range(burst + 5)} == {200}
    assert plans.set_plan("org-s", "pro") == moved  # idempotent: nothing created, nothing moved


def test_the_daily_quota_answers_429_in_each_surface_body(aws: None) -> None:
    org = make_org("org-q", "org-q", plan="standard")
    client = boto3.client("apigateway", region_name=REGION)
    standard_id = plans.usage_plans()["standard"]
    client.update_usage_plan(
        usagePlanId=standard_id, patchOperations=[{"op": "replace", "path": "/quota/limit", "value": "3"}]
    )
    api, clock = frozen_api()
    assert [api.get("/v2/segments", key=org.key).status for _ in range(3)] == [200] * 3
    clock.now += 60  # tokens back; the day's quota is not
    over = api.get("/v2/segments", key=org.key)
    assert over.status == 429 and over.headers["Retry-After"] == "3600" and set(over.json) == MINERVA_KEYS
    sheep = api.get("/segments/v2/org-q", bearer=org.key)
    assert sheep.status == 429 and sheep.json["type"] == "rate_limited" and "quota" in sheep.json["description"]


def test_a_key_of_an_org_without_a_plan_is_refused_in_each_surface_body(aws: None) -> None:
    created = auth.create_api_key("org-n", "org-n")
    assert "usageIdentifierKey" not in auth.minerva_policy(
        auth.authenticate(created.api_key), "arn:aws:execute-api:us-east-1:1:api/v1/GET/v2/segments"
    )
    api = Api()
    minerva = api.get("/v2/segments", key=created.api_key)
    assert minerva.status == 403 and set(minerva.json) == MINERVA_KEYS
    sheep = api.get("/segments/v2/org-n", bearer=created.api_key)
    assert sheep.status == 403 and sheep.json["type"] == "permission_denied"
    plans.set_plan("org-n", "standard")  # an existing key gets the org's gateway key
    fresh = Api()  # a new gateway: no cached authorization
    assert fresh.get("/v2/segments", key=created.api_key).status == 200


def test_the_authorizers_name_the_org_gateway_key(aws: None) -> None:
    org = make_org("org-a", "org-a", plan="pro")
    principal = auth.authenticate(org.key)
    assert principal is not None and principal.gateway_key_id == plans.ensure_gateway_key("org-a")
    arn = "arn:aws:execute-api:us-east-1:1:api/v1/GET/segments/v2/org-a"
    assert auth.sheep_policy(principal, arn)["usageIdentifierKey"] == principal.gateway_key_id
    assert auth.minerva_policy(principal, arn)["usageIdentifierKey"] == principal.gateway_key_id
    # both items of the key carry it: the authorizer's one GetItem and the listing
    [listed] = api_keys.list_for_org("org-a")
    assert listed.gateway_key_id == principal.gateway_key_id


def test_admin_create_api_key_and_set_plan(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["--json", "create-api-key", "--org", "acme", "--bucket", "acme", "--plan", "pro"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["plan"] == "pro"
    # a second key keeps the org's plan and its one gateway key
    assert admin.main(["--json", "create-api-key", "--org", "acme", "--bucket", "acme"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["plan"] == "pro"
    one, two = (auth.authenticate(c["api_key"]) for c in (created, second))
    assert one and two and one.gateway_key_id == two.gateway_key_id is not None
    assert admin.main(["--json", "set-plan", "--org", "acme", "--plan", "standard"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["plan"] == "standard" and moved["gateway_key_id"] == one.gateway_key_id
    client = boto3.client("apigateway", region_name=REGION)
    assert [p["name"] for p in client.get_usage_plans(keyId=one.gateway_key_id)["items"]] == ["StandardUsagePlan"]
    assert len(client.get_api_keys()["items"]) == 1  # one API Gateway key per org
    with pytest.raises(SystemExit):
        admin.main(["set-plan", "--org", "acme", "--plan", "gold"])
    assert "invalid choice: 'gold'" in capsys.readouterr().err


def test_admin_names_the_settings_when_the_plans_are_not_found(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USAGE_PLAN_PRO", "no-such-plan")
    assert admin.main(["set-plan", "--org", "acme", "--plan", "pro"]) == 2
    err = capsys.readouterr().err
    assert "USAGE_PLAN_PRO=no-such-plan" in err and "ProUsagePlanId" in err


def test_template_meters_both_apis_by_the_authorizers_key() -> None:
    resources = template()["Resources"]
    for name in ("MinervaApi", "SheepApi"):
        props = resources[name]["Properties"]
        assert props["ApiKeySourceType"] == "AUTHORIZER" and props["Auth"]["ApiKeyRequired"] is True
        for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
            response = props["GatewayResponses"][kind]
            assert response["StatusCode"] == "429" and "Retry-After" in response["ResponseParameters"]["Headers"]
    for plan in ("Standard", "Pro"):
        props = resources[f"{plan}UsagePlan"]["Properties"]
        assert props["Throttle"] == {
            "RateLimit": {"Ref": f"{plan}RateLimit"},
            "BurstLimit": {"Ref": f"{plan}BurstLimit"},
        }
        assert props["Quota"] == {"Limit": {"Ref": f"{plan}DailyQuota"}, "Period": "DAY"}
        assert {s["ApiId"]["Ref"] for s in props["ApiStages"]} == {"MinervaApi", "SheepApi"}
