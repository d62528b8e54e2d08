"""Usage plans as API Gateway applies them to an API whose routes require an API key (API key
source AUTHORIZER: the key is the authorizer's `usageIdentifierKey`): a key in no usage plan is
refused (403 INVALID_API_KEY); each key has a token bucket of its plan's burst, refilled at its
rate per second (429 THROTTLED when empty), and a count of the UTC day's requests against the plan's
quota (429 QUOTA_EXCEEDED). Plans and their keys are read from moto's API Gateway (created from
the template; `segments-admin set-plan` moves keys between them), each key's plan for a couple of
seconds at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools import cfn

PLAN_CACHE_SECONDS = 2.0  # how long a key's plan is remembered (a set-plan shows within this)


@dataclass(frozen=True)
class Plan:
    plan_id: str
    rate: float | None  # tokens per second (None: the plan does not throttle)
    burst: int | None
    quota: int | None  # requests per period
    period: str  # DAY, WEEK or MONTH


@dataclass
class _Bucket:
    plan_id: str
    tokens: float
    at: float


class UsagePlans:
    """Admission of one request by its usage plan key: None (admitted) or the gateway response type."""

    def __init__(
        self,
        client: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        cache_seconds: float = PLAN_CACHE_SECONDS,
    ) -> None:
        self._client = client
        self._clock, self._wall, self._cache_seconds = clock, wall, cache_seconds
        self._plans: dict[str, tuple[float, Plan | None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def client(self) -> Any:
        if self._client is None:
            import boto3  # AWS_ENDPOINT_URL (the stack's moto) decides where it goes

            self._client = boto3.client("apigateway", region_name=cfn.REGION)
        return self._client

    def plan_of(self, key_id: str) -> Plan | None:
        now = self._clock()
        with self._lock:
            cached = self._plans.get(key_id)
        if cached and cached[0] > now:
            return cached[1]
        items = self.client().get_usage_plans(keyId=key_id).get("items", [])
        plan = _plan(items[0]) if items else None
        with self._lock:
            self._plans[key_id] = (now + self._cache_seconds, plan)
        return plan

    def admit(self, key_id: str | None) -> str | None:
        plan = self.plan_of(key_id) if key_id else None
        if plan is None:
            return "INVALID_API_KEY"
        now = self._clock()
        with self._lock:
            period = (key_id or "", plan.plan_id, _period_of(plan.period, self._wall()))
            if plan.quota is not None and self._counts.get(period, 0) >= plan.quota:
                return "QUOTA_EXCEEDED"
            if plan.rate is not None and plan.burst is not None:
                bucket = self._buckets.get(key_id or "")
                if bucket is None or bucket.plan_id != plan.plan_id:  # a new key, or a key on a new plan
                    bucket = self._buckets[key_id or ""] = _Bucket(plan.plan_id, float(plan.burst), now)
                bucket.tokens = min(float(plan.burst), bucket.tokens + (now - bucket.at) * plan.rate)
                bucket.at = now
                if bucket.tokens < 1:
                    return "THROTTLED"
                bucket.tokens -= 1
            self._counts[period] = self._counts.get(period, 0) + 1
        return None


def _plan(item: dict[str, Any]) -> Plan:
    throttle = item.get("throttle") or {}
    quota = item.get("quota") or {}
    return Plan(
        plan_id=str(item["id"]),
        rate=float(throttle["rateLimit"]) if "rateLimit" in throttle else None,
        burst=int(throttle["burstLimit"]) if "burstLimit" in throttle else None,
        quota=int(quota["limit"]) if "limit" in quota else None,
        period=str(quota.get("period", "DAY")),
    )


def _period_of(period: str, wall: float) -> str:
    """The quota period holding the instant, in UTC (a day, an ISO week, a month)."""
    t = time.gmtime(wall)
    if period == "WEEK":
        return time.strftime("%G-W%V", t)
    if period == "MONTH":
        return time.strftime("%Y-%m", t)
    return time.strftime("%Y-%m-%d", t)
