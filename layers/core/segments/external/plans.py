"""Usage plans: per-org rate limits and daily quotas, enforced by API Gateway.

Each org has one API Gateway key (never shown to anyone: the authorizers return its id as
`usageIdentifierKey`, API key source AUTHORIZER), attached to one usage plan of the stack
(`standard` or `pro`, whose rate, burst and daily quota are template parameters). The key's id is
stored on the org's plan item and copied onto each of the org's segments keys, so the authorizer
finds it with the one GetItem it already makes. Operators only (`segments-admin`): the functions
never call API Gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from segments import aws, errors
from segments.config import get_settings
from segments.models import valid_org_id
from segments.store import org_plans
from segments.timefmt import iso, now

PLANS = ("standard", "pro")
DEFAULT_PLAN = "standard"


@dataclass(frozen=True)
class OrgPlan:
    org_id: str
    plan: str
    gateway_key_id: str
    usage_plan_id: str
    keys_updated: int  # segments keys that were given the gateway key id by this call


def _usage_plan_refs() -> dict[str, str]:
    settings = get_settings()
    return {"standard": settings.usage_plan_standard, "pro": settings.usage_plan_pro}


def usage_plans() -> dict[str, str]:
    """Plan name -> usage plan id, found by the id or the name each setting gives."""
    wanted = _usage_plan_refs()
    found: dict[str, str] = {}
    for page in aws.apigateway().get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            for name, ref in wanted.items():
                if ref in (plan.get("id"), plan.get("name")):
                    found.setdefault(name, plan["id"])
    missing = [name for name in PLANS if name not in found]
    if missing:
        variables = ", ".join(f"USAGE_PLAN_{name.upper()}={wanted[name]}" for name in missing)
        raise errors.NotFound(
            f"no usage plan for {', '.join(missing)} ({variables}): set USAGE_PLAN_STANDARD and "
            "USAGE_PLAN_PRO to the stack outputs StandardUsagePlanId and ProUsagePlanId"
        )
    return found


def gateway_key_name(org_id: str) -> str:
    """The org's API Gateway key's name: the table's name (one per stack) and the org."""
    return f"{get_settings().table_name}/{org_id}"


def _find_gateway_key(name: str) -> str | None:
    """A key of that exact name left by an earlier attempt that died before storing its id."""
    for page in aws.apigateway().get_paginator("get_api_keys").paginate(nameQuery=name):
        for key in page.get("items", []):
            if key.get("name") == name:
                return str(key["id"])
    return None


def ensure_gateway_key(org_id: str) -> str:
    """The org's API Gateway key id, created (and stored on the org) if the org has none."""
    stored = org_plans.get_plan(org_id)
    if stored and stored.get("gateway_key_id"):
        return str(stored["gateway_key_id"])
    client = aws.apigateway()
    name = gateway_key_name(org_id)
    found = _find_gateway_key(name)
    created = found or str(
        client.create_api_key(name=name, enabled=True, description=f"Segments usage plan key of org {org_id}")["id"]
    )
    kept = org_plans.claim_gateway_key(org_id, created, iso(now()))
    if kept != created and not found:
        client.delete_api_key(apiKey=created)  # another call stored its key first: ours is not needed
    return kept


def set_plan(org_id: str, plan: str) -> OrgPlan:
    """Put the org on `plan`: its gateway key (created if absent) leaves the other plan and joins
    this one, and every segments key of the org names it. Idempotent."""
    if not valid_org_id(org_id):
        raise errors.ValidationFailed(f"invalid org id {org_id!r}")
    if plan not in PLANS:
        raise errors.ValidationFailed(f"unknown plan {plan!r}: one of {', '.join(PLANS)}")
    ids = usage_plans()
    gateway_key_id = ensure_gateway_key(org_id)
    client = aws.apigateway()
    # A key may be in one usage plan per API stage: leave the other plan first.
    for other, usage_plan_id in ids.items():
        if other != plan and _in_plan(usage_plan_id, gateway_key_id):
            client.delete_usage_plan_key(usagePlanId=usage_plan_id, keyId=gateway_key_id)
    if not _in_plan(ids[plan], gateway_key_id):
        client.create_usage_plan_key(usagePlanId=ids[plan], keyId=gateway_key_id, keyType="API_KEY")
    org_plans.set_plan(org_id, plan, iso(now()))
    updated = org_plans.name_gateway_key_on_keys(org_id, gateway_key_id)
    return OrgPlan(org_id, plan, gateway_key_id, ids[plan], updated)


def current_plan(org_id: str) -> str | None:
    stored = org_plans.get_plan(org_id)
    return str(stored["plan"]) if stored and stored.get("plan") else None


def _in_plan(usage_plan_id: str, gateway_key_id: str) -> bool:
    try:
        aws.apigateway().get_usage_plan_key(usagePlanId=usage_plan_id, keyId=gateway_key_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            return False
        raise
    return True


def describe(found: OrgPlan) -> dict[str, Any]:
    return {
        "org_id": found.org_id,
        "plan": found.plan,
        "gateway_key_id": found.gateway_key_id,
        "usage_plan_id": found.usage_plan_id,
    }
