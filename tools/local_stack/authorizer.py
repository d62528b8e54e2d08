"""Lambda authorizers as API Gateway runs them: identity sources, the result cache, and IAM
policy evaluation of the (cached) policy against each request's method ARN."""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from typing import Any

from tools import cfn
from tools.local_stack.responses import gateway_response
from tools.local_stack.routing import Response, header
from tools.local_stack.runtime import Runtime

log = logging.getLogger("local_stack")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def evaluate_policy(policy_document: dict[str, Any], method_arn: str) -> str | None:
    """ "Deny" if a statement denies execute-api:Invoke on the ARN (Deny wins), else "Allow" if
    one allows it, else None (implicitly denied). `*` and `?` are wildcards in Action/Resource."""
    allowed = False
    for statement in _as_list(policy_document.get("Statement") or []):
        actions = _as_list(statement.get("Action") or [])
        if not any(_wildcard_match(str(a), "execute-api:Invoke", ignore_case=True) for a in actions):
            continue
        if not any(_wildcard_match(str(r), method_arn) for r in _as_list(statement.get("Resource") or [])):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        allowed = allowed or statement.get("Effect") == "Allow"
    return "Allow" if allowed else None


def policy_allows(policy_document: dict[str, Any], method_arn: str) -> bool:
    return evaluate_policy(policy_document, method_arn) == "Allow"


def _context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AuthorizerDenied(Exception):
    """The authorizer raised "Unauthorized": API Gateway answers 401."""


class AuthorizerError(Exception):
    """The authorizer failed otherwise, or its answer is not a valid policy: API Gateway answers 500."""


class Authorizers:
    """The authorizers of a template's APIs, with API Gateway's per-identity result cache."""

    def __init__(self, apis: dict[str, cfn.Api], api_ids: dict[str, str], runtime: Runtime) -> None:
        self.apis = apis
        self.api_ids = api_ids
        self.runtime = runtime
        self._cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def _refuse(self, api: str, response_type: str, request_id: str, path: str, message: str | None = None) -> Response:
        return gateway_response(self.apis[api], self.api_ids[api], response_type, request_id, message, path)

    def authorize(
        self, route: cfn.Route, event: dict[str, Any], headers: list[tuple[str, str]], request_id: str
    ) -> Response | dict[str, Any]:
        """The value of requestContext.authorizer, or the gateway's refusal.

        A missing identity source is refused without calling the authorizer; results are cached
        per identity for ReauthorizeEvery seconds and the (cached) policy is evaluated against
        each request's method ARN."""
        authorizer = self.apis[route.api].authorizers[route.authorizer or ""]
        query = event["queryStringParameters"] or {}
        identity = [(header(headers, name) or "").strip() for name in authorizer.headers]
        identity += [(query.get(name) or "").strip() for name in authorizer.query_strings]
        if not all(identity):
            return self._refuse(route.api, "UNAUTHORIZED", request_id, event["path"])

        stage = self.apis[route.api].stage_name
        method_arn = (
            f"arn:aws:execute-api:{cfn.REGION}:{cfn.ACCOUNT_ID}:{self.api_ids[route.api]}"
            f"/{stage}/{event['httpMethod']}/{event['path'].lstrip('/')}"
        )
        key = (route.api, authorizer.name, *identity)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        latency = 0
        if cached and cached[0] > now:
            result = cached[1]
        else:
            started = time.monotonic()
            try:
                result = self._call(authorizer, event, method_arn)
            except AuthorizerDenied:
                return self._refuse(route.api, "UNAUTHORIZED", request_id, event["path"])
            except AuthorizerError as exc:
                log.error("authorizer %s failed: %s", authorizer.function, exc)
                return self._refuse(route.api, "AUTHORIZER_FAILURE", request_id, event["path"])
            latency = int((time.monotonic() - started) * 1000)
            if authorizer.reauthorize_every > 0:
                with self._cache_lock:
                    self._cache[key] = (now + authorizer.reauthorize_every, result)

        decision = evaluate_policy(result["policyDocument"], method_arn)
        if decision != "Allow":
            message = "User is not authorized to access this resource"
            if decision == "Deny":
                message += " with an explicit deny"
            return self._refuse(route.api, "ACCESS_DENIED", request_id, event["path"], message)
        context = {k: _context_value(v) for k, v in (result.get("context") or {}).items() if v is not None}
        if result.get("usageIdentifierKey"):  # API key source AUTHORIZER: the key metered by usage plans
            event["requestContext"]["identity"]["apiKeyId"] = str(result["usageIdentifierKey"])
        return {"principalId": result["principalId"], **context, "integrationLatency": latency}

    def _call(self, authorizer: cfn.Authorizer, event: dict[str, Any], method_arn: str) -> dict[str, Any]:
        if authorizer.payload_type == "TOKEN":
            auth_event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": header(list((event["headers"] or {}).items()), authorizer.headers[0]),
                "methodArn": method_arn,
            }
        else:
            request_context = {k: v for k, v in event["requestContext"].items() if k != "authorizer"}
            auth_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded", "requestContext")},
                "requestContext": request_context,
            }
        try:
            result = self.runtime.invoke(authorizer.function, auth_event)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                raise AuthorizerDenied from exc
            raise AuthorizerError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc
        if not (
            isinstance(result, dict)
            and isinstance(result.get("principalId"), str | int)
            and isinstance(result.get("policyDocument"), dict)
            and isinstance(result["policyDocument"].get("Statement"), list | dict)
            and isinstance(result.get("context") or {}, dict)
            and not any(isinstance(v, dict | list) for v in (result.get("context") or {}).values())
            and isinstance(result.get("usageIdentifierKey") or "", str)
        ):
            raise AuthorizerError(f"malformed authorizer result: {result!r:.500}")
        return result
