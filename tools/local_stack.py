"""The whole stack on this machine, without Docker or AWS.

    python -m tools.local_stack [--host 127.0.0.1] [--port 3000] [--moto-port 5000]
                                [--org demo-org] [--bucket demo]

moto (DynamoDB, SQS, EventBridge) runs in-process on --moto-port with the template's tables,
queues and buses. An API Gateway emulator (REST API, Lambda proxy integration) serves every
route of every AWS::Serverless::Api of template.yaml on --port: REQUEST/TOKEN authorizers with
their result cache and policy evaluation, the template's gateway responses, and the functions
imported in-process. Functions with SQS events are fed by pollers, like Lambda's event source
mapping. A demo API key is created and printed at startup; data lives until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3

from tools import cfn

log = logging.getLogger("local_stack")

MAX_BODY_BYTES = 6_291_456  # Lambda's 6 MB payload limit (API Gateway's own is 10 MB)
DOCS_PATH = "/v2/docs"
OPENAPI_PATH = "/v2/docs/openapi.json"

# Status, x-amzn-ErrorType and $context.error.message of API Gateway's built-in responses.
_RESPONSE_DEFAULTS: dict[str, tuple[int, str, str | None]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    "RESOURCE_NOT_FOUND": (404, "ResourceNotFoundException", "Not Found"),
    "UNAUTHORIZED": (401, "UnauthorizedException", "Unauthorized"),
    "ACCESS_DENIED": (403, "AccessDeniedException", "User is not authorized to access this resource"),
    "AUTHORIZER_FAILURE": (500, "AuthorizerFailureException", None),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "AuthorizerConfigurationException", None),
    "REQUEST_TOO_LARGE": (413, "RequestTooLargeException", "Request Too Long"),
    "DEFAULT_4XX": (400, "BadRequestException", "Bad Request"),
    "DEFAULT_5XX": (502, "InternalServerErrorException", "Internal server error"),
}


# ---------------------------------------------------------------- VTL (the subset gateway responses use)

_STEP = r"\.[A-Za-z_]\w*(?:\([^)]*\))?"
_VTL_REFERENCE = re.compile(rf"\$!?(?:\{{context((?:{_STEP})+)\}}|context((?:{_STEP})+))")
_STEP_PARTS = re.compile(r"\.([A-Za-z_]\w*)(\(([^)]*)\))?")
_STRING_ARG = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def render_vtl(text: str, variables: dict[str, str | None]) -> str:
    """Substitute `$context.<name>` (and `${context.<name>}`) references, with string methods
    `.replace(a, b)`, `.toLowerCase()`, `.toUpperCase()` and `.trim()` applied to them.
    Unknown references are left as they are, as Velocity does."""

    def substitute(match: re.Match[str]) -> str:
        steps = [
            (m.group(1), m.group(3) if m.group(2) else None)
            for m in _STEP_PARTS.finditer(match.group(1) or match.group(2))
        ]
        for n in range(len(steps), 0, -1):
            name = ".".join(step for step, _ in steps[:n])
            if name in variables and all(args is None for _, args in steps[:n]):
                value = variables[name] or ""
                break
        else:
            return match.group(0)
        for method, args in steps[n:]:
            arguments = [a or b for a, b in _STRING_ARG.findall(args or "")]
            if method == "replace" and len(arguments) == 2:
                value = value.replace(arguments[0], arguments[1])
            elif method in ("toLowerCase", "toUpperCase", "trim") and args is not None:
                value = {"toLowerCase": value.lower, "toUpperCase": value.upper, "trim": value.strip}[method]()
            else:
                return match.group(0)
        return value

    return _VTL_REFERENCE.sub(substitute, text)


# ---------------------------------------------------------------- IAM policy evaluation


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


# ---------------------------------------------------------------- functions, in-process


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._started + self.timeout_seconds - time.monotonic()) * 1000))


def lambda_context(function_name: str, *, memory_mb: int = 512, timeout_seconds: int = 28) -> LambdaContext:
    """A context like the one Lambda hands a handler (also used by the tests and the benchmarks)."""
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{cfn.REGION}:{cfn.ACCOUNT_ID}:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=timeout_seconds,
    )


class Functions:
    """Imports each handler module once (under a unique name) and invokes handlers like Lambda."""

    def __init__(self, template: dict[str, Any], root: Path) -> None:
        self._template = template
        self._root = root
        self._modules: dict[Path, ModuleType] = {}
        self._lock = threading.Lock()

    def _module(self, code_uri: str, module_name: str) -> ModuleType:
        code_dir = (self._root / code_uri).resolve()
        path = code_dir / (module_name.replace(".", "/") + ".py")
        with self._lock:
            if path not in self._modules:
                unique = "local_fn_" + re.sub(r"\W", "_", f"{code_uri.strip('/')}__{module_name}")
                spec = importlib.util.spec_from_file_location(unique, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                sys.path.insert(0, str(code_dir))  # sibling modules of the handler, as in Lambda
                try:
                    sys.modules[unique] = module
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(unique, None)
                    raise
                finally:
                    sys.path.remove(str(code_dir))
                self._modules[path] = module
            return self._modules[path]

    def handler(self, logical_id: str) -> Any:
        fn = cfn.function(self._template, logical_id)
        module_name, attr = fn.handler.rsplit(".", 1)
        return getattr(self._module(fn.code_uri, module_name), attr)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call the handler; the result goes through JSON as Lambda's would (Decimal etc. fail)."""
        fn = cfn.function(self._template, logical_id)
        context = lambda_context(logical_id, memory_mb=fn.memory_size, timeout_seconds=fn.timeout)
        return json.loads(json.dumps(self.handler(logical_id)(event, context)))


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: str  # path and query, as received
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str = ""


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in path.split("/") if part]


def _match_path(template_path: str, parts: list[str]) -> dict[str, str] | None:
    """Path parameters when `parts` fit the template path ({name}, greedy {name+} last)."""
    params: dict[str, str] = {}
    template_parts = _segments(template_path)
    for i, part in enumerate(template_parts):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(parts):
                return None
            params[part[1:-2]] = "/".join(parts[i:])
            return params
        if i >= len(parts):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = parts[i]
        elif part != parts[i]:
            return None
    return params if len(template_parts) == len(parts) else None


def _specificity(template_path: str) -> tuple[int, ...]:
    """Static parts beat {param}, which beats a greedy {proxy+}."""
    return tuple(0 if p.endswith("+}") else 1 if p.startswith("{") else 2 for p in _segments(template_path))


class Router:
    def __init__(self, routes: list[cfn.Route], api_order: list[str]) -> None:
        self.routes = routes
        self.api_order = api_order

    def match(self, method: str, path: str) -> tuple[cfn.Route, dict[str, str]] | None:
        """API Gateway's choice: the most specific resource first, then its method (before ANY)."""
        parts = _segments(path)
        candidates = [(r, p) for r in self.routes if (p := _match_path(r.path, parts)) is not None]
        if not candidates:
            return None
        best = max(_specificity(r.path) for r, _ in candidates)
        on_resource = [(r, p) for r, p in candidates if _specificity(r.path) == best]
        for wanted in (method, "ANY"):
            for route, params in on_resource:
                if route.method == wanted:
                    return route, params
        return None

    def api_for(self, path: str) -> str:
        """The API of an unrouted path: the one whose routes share the longest path prefix."""
        parts = _segments(path)

        def shared(route: cfn.Route) -> int:
            count = 0
            for mine, theirs in zip(_segments(route.path), parts, strict=False):
                if mine != theirs and not mine.startswith("{"):
                    break
                count += 1
            return count

        best_api, best = self.api_order[0], 0
        for api in self.api_order:
            score = max((shared(r) for r in self.routes if r.api == api), default=0)
            if score > best:
                best_api, best = api, score
        return best_api


# ---------------------------------------------------------------- the gateway


def _short_id(seed: str, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    out = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        out.append(alphabet[index])
    return "".join(out)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    value = None
    for key, item in headers:
        if key.lower() == name.lower():
            value = item
    return value


def _context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AuthorizerDenied(Exception):
    """The authorizer raised "Unauthorized": API Gateway answers 401."""


class AuthorizerError(Exception):
    """The authorizer failed otherwise, or its answer is not a valid policy: API Gateway answers 500."""


class Gateway:
    """API Gateway (REST, Lambda proxy) for the APIs of one template; no sockets here."""

    def __init__(self, template: dict[str, Any], root: Path, functions: Functions) -> None:
        self.apis = cfn.apis(template)
        self.router = Router(cfn.api_routes(template), list(self.apis))
        self.functions = functions
        self.root = root
        self.api_ids = {name: _short_id(name, 10) for name in self.apis}
        self._cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    # -------------------------------------------------------- entry point
    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        started = time.time()
        split = urlsplit(request.raw_path)
        if request.method in ("GET", "HEAD") and split.path.rstrip("/") in (DOCS_PATH, OPENAPI_PATH):
            response = self._docs(split.path.rstrip("/"), request_id)
        else:
            response = self._route(request, split.path, split.query, request_id, started)
        response.headers.append(("x-amzn-RequestId", request_id))
        response.request_id = request_id
        return response

    # -------------------------------------------------------- gateway responses
    def gateway_response(
        self, api: str, response_type: str, request_id: str, message: str | None = None, path: str = "/"
    ) -> Response:
        """API Gateway's own answer: the API's GatewayResponses entry for the type, else its
        DEFAULT_4XX/5XX, else the built-in `{"message": ...}` body."""
        default_status, error_type, default_message = _RESPONSE_DEFAULTS[response_type]
        message = message or default_message
        responses = self.apis[api].gateway_responses
        family = responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
        chosen = responses.get(response_type) or family
        status = (chosen and chosen.status_code) or (family and family.status_code) or str(default_status)
        templates = chosen.templates if chosen else {}
        body_template = (
            templates.get("application/json")
            or next(iter(templates.values()), None)
            or '{"message":$context.error.messageString}'
        )
        variables = {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "error.message": message,
            "error.messageString": json.dumps(message),
            "error.responseType": response_type,
            "apiId": self.api_ids[api],
            "stage": self.apis[api].stage_name,
            "path": f"/{self.apis[api].stage_name}{path}",
            "accountId": cfn.ACCOUNT_ID,
        }
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error_type),
            ("x-api-request-id", "req_" + request_id.replace("-", "")),
            *((chosen.headers.items()) if chosen else ()),
        ]
        return Response(int(status), headers, render_vtl(body_template, variables).encode())

    # -------------------------------------------------------- routing and integration
    def _route(self, request: Request, raw_path: str, query: str, request_id: str, started: float) -> Response:
        path = "/" + "/".join(_segments(raw_path))  # decoded; matching splits the raw path first
        matched = self.router.match(request.method, raw_path)
        if matched is None:
            api = self.router.api_for(path)
            return self.gateway_response(api, "MISSING_AUTHENTICATION_TOKEN", request_id, path=path)
        route, path_params = matched
        api = self.apis[route.api]
        if len(request.body) > MAX_BODY_BYTES:
            return self.gateway_response(route.api, "REQUEST_TOO_LARGE", request_id, path=path)

        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query_pairs = parse_qsl(query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for name, value in query_pairs:
            multi_query.setdefault(name, []).append(value)
        try:
            body: str | None = request.body.decode("utf-8") if request.body else None
            is_base64 = False
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(request.body).decode(), True

        stage = api.stage_name
        request_context: dict[str, Any] = {
            "accountId": cfn.ACCOUNT_ID,
            "apiId": self.api_ids[route.api],
            "resourceId": _short_id(f"{route.api}{route.path}", 6),
            "resourcePath": route.path,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(started)),
            "requestTimeEpoch": int(started * 1000),
            "path": f"/{stage}{path}",
            "stage": stage,
            "domainName": _header(request.headers, "host") or "127.0.0.1",
            "domainPrefix": self.api_ids[route.api],
            "requestId": request_id,
            "protocol": "HTTP/1.1",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": _header(request.headers, "user-agent"),
                "user": None,
            },
        }
        event: dict[str, Any] = {
            "resource": route.path,
            "path": path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": dict(query_pairs) or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": is_base64,
        }

        if route.authorizer:
            outcome = self._authorize(route, event, request.headers, request_id)
            if isinstance(outcome, Response):
                return outcome
            request_context["authorizer"] = outcome
        return self._integrate(route, event, request_id, path)

    def _authorize(
        self, route: cfn.Route, event: dict[str, Any], headers: list[tuple[str, str]], request_id: str
    ) -> Response | dict[str, Any]:
        """The value of requestContext.authorizer, or the gateway's refusal.

        A missing identity source is refused without calling the authorizer; results are cached
        per identity for ReauthorizeEvery seconds and the (cached) policy is evaluated against
        each request's method ARN."""
        authorizer = self.apis[route.api].authorizers[route.authorizer or ""]
        query = event["queryStringParameters"] or {}
        identity = [(_header(headers, name) or "").strip() for name in authorizer.headers]
        identity += [(query.get(name) or "").strip() for name in authorizer.query_strings]
        if not all(identity):
            return self.gateway_response(route.api, "UNAUTHORIZED", request_id, path=event["path"])

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
                result = self._call_authorizer(authorizer, event, method_arn)
            except AuthorizerDenied:
                return self.gateway_response(route.api, "UNAUTHORIZED", request_id, path=event["path"])
            except AuthorizerError as exc:
                log.error("authorizer %s failed: %s", authorizer.function, exc)
                return self.gateway_response(route.api, "AUTHORIZER_FAILURE", request_id, path=event["path"])
            latency = int((time.monotonic() - started) * 1000)
            if authorizer.reauthorize_every > 0:
                with self._cache_lock:
                    self._cache[key] = (now + authorizer.reauthorize_every, result)

        decision = evaluate_policy(result["policyDocument"], method_arn)
        if decision != "Allow":
            message = "User is not authorized to access this resource"
            if decision == "Deny":
                message += " with an explicit deny"
            return self.gateway_response(route.api, "ACCESS_DENIED", request_id, message, path=event["path"])
        context = {k: _context_value(v) for k, v in (result.get("context") or {}).items() if v is not None}
        return {"principalId": result["principalId"], **context, "integrationLatency": latency}

    def _call_authorizer(self, authorizer: cfn.Authorizer, event: dict[str, Any], method_arn: str) -> dict[str, Any]:
        if authorizer.payload_type == "TOKEN":
            auth_event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": _header(list((event["headers"] or {}).items()), authorizer.headers[0]),
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
            result = self.functions.invoke(authorizer.function, auth_event)
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
        ):
            raise AuthorizerError(f"malformed authorizer result: {result!r:.500}")
        return result

    def _integrate(self, route: cfn.Route, event: dict[str, Any], request_id: str, path: str) -> Response:
        try:
            result = self.functions.invoke(route.function, event)
        except Exception:
            log.error("%s raised:\n%s", route.function, traceback.format_exc())
            return self.gateway_response(route.api, "DEFAULT_5XX", request_id, "Internal server error", path=path)
        try:
            return self._proxy_response(result)
        except (TypeError, ValueError, KeyError) as exc:
            log.error("%s returned a malformed proxy response (%s): %r", route.function, exc, result)
            return self.gateway_response(route.api, "DEFAULT_5XX", request_id, "Internal server error", path=path)

    @staticmethod
    def _proxy_response(result: Any) -> Response:
        if not isinstance(result, dict):
            raise TypeError("not an object")
        status = result["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int | str) or not 100 <= int(status) <= 599:
            raise ValueError(f"bad statusCode {status!r}")
        body = result.get("body")
        if body is not None and not isinstance(body, str):
            raise TypeError("body must be a string")
        raw = base64.b64decode(body) if body and result.get("isBase64Encoded") else (body or "").encode()
        multi = {k: [str(v) for v in vs] for k, vs in (result.get("multiValueHeaders") or {}).items()}
        single = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        headers = [(k, v) for k, vs in multi.items() for v in vs]
        lower = {k.lower() for k in multi}
        headers += [(k, v) for k, v in single.items() if k.lower() not in lower]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return Response(int(status), headers, raw)

    # -------------------------------------------------------- docs
    def _docs(self, path: str, request_id: str) -> Response:
        if path == DOCS_PATH:
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], SWAGGER_HTML.encode())
        spec = self.root / "docs" / "openapi.json"
        if not spec.is_file():
            return self.gateway_response(self.router.api_for(path), "RESOURCE_NOT_FOUND", request_id, path=path)
        return Response(200, [("Content-Type", "application/json")], spec.read_bytes())


SWAGGER_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Segments API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""


# ---------------------------------------------------------------- HTTP front end


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SegmentsLocal/1"
    gateway: Gateway  # set on the subclass made per stack

    def _read_body(self) -> bytes:
        """At most MAX_BODY_BYTES + 1 bytes are kept; the rest is read and dropped."""
        limit = MAX_BODY_BYTES + 1
        kept = bytearray()

        def take(n: int) -> None:
            while n > 0:
                chunk = self.rfile.read(min(n, 1 << 16))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-body")
                n -= len(chunk)
                if len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])

        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                take(size)
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
        else:
            take(int(self.headers.get("Content-Length") or 0))
        return bytes(kept)

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        request = Request(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        response = self.gateway.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.monotonic() - started) * 1000
        log.info("%s %s %d %.0fms %s", self.command, self.path, response.status, elapsed, response.request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


# ---------------------------------------------------------------- SQS event sources


class SqsPoller(threading.Thread):
    """Lambda's SQS event source mapping: receive, invoke, delete what succeeded."""

    def __init__(
        self,
        functions: Functions,
        source: cfn.SqsSource,
        queue_url: str,
        queue_arn: str,
        endpoint_url: str,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name=f"sqs-{source.function}-{source.queue}", daemon=True)
        self.functions = functions
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.stopping = stopping
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=cfn.REGION)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                messages = self._receive()
                if messages:
                    self._process(messages)
            except Exception:
                if not self.stopping.is_set():
                    log.error("SQS poller %s:\n%s", self.name, traceback.format_exc())
                    self.stopping.wait(1)

    def _receive(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.source.batch_size and not self.stopping.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(batch)),
                WaitTimeSeconds=0 if batch else 1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            batch.extend(messages)
        return batch

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
            if "StringValue" in value:
                attribute["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
            attributes[name] = attribute
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes") or {},
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": cfn.REGION,
        }

    def _process(self, messages: list[dict[str, Any]]) -> None:
        ids = {m["MessageId"] for m in messages}
        try:
            result = self.functions.invoke(self.source.function, {"Records": [self._record(m) for m in messages]})
        except Exception:
            log.error("%s failed on a batch of %d:\n%s", self.source.function, len(messages), traceback.format_exc())
            return  # nothing deleted: the batch comes back after the visibility timeout
        failed: set[str] = set()
        if self.source.report_batch_item_failures and isinstance(result, dict):
            for item in result.get("batchItemFailures") or []:
                identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
                if not identifier or identifier not in ids:
                    log.error("%s: invalid batchItemFailures entry %r; whole batch retried", self.source.function, item)
                    return
                failed.add(identifier)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        log.info(
            "%s: batch of %d from %s, %d failed", self.source.function, len(messages), self.source.queue, len(failed)
        )


# ---------------------------------------------------------------- the stack


@dataclass(frozen=True)
class StackInfo:
    api_url: str
    moto_url: str
    port: int
    moto_port: int
    org: str
    bucket: str
    demo_key: str | None
    demo_key_id: str | None


class LocalStack:
    """moto + the API emulator + SQS pollers for one template; `start()` then `stop()`."""

    def __init__(
        self,
        template_path: str | Path = cfn.REPO_ROOT / "template.yaml",
        host: str = "127.0.0.1",
        port: int = 3000,
        moto_port: int = 5000,
        org: str = "demo-org",
        bucket: str = "demo",
        *,
        create_demo_key: bool = True,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.root = self.template_path.parent
        self.template = cfn.load_template(self.template_path)
        self.host, self.port, self.moto_port = host, port, moto_port
        self.org, self.bucket = org, bucket
        self.create_demo_key = create_demo_key
        self.resources: dict[str, str] = {}
        self.info: StackInfo | None = None
        self._stopping = threading.Event()
        self._pollers: list[SqsPoller] = []
        self._moto: Any = None
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._added_paths: list[str] = []

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackInfo:
        """Start moto, create the resources, import the functions, serve HTTP, start the pollers."""
        from moto.server import ThreadedMotoServer

        for what, port in (("moto", self.moto_port), ("API", self.port)):
            _ensure_free(self.host, port, what)  # moto's thread would hang on a busy port
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
        self._moto.start()
        try:
            return self._start_services()
        except BaseException:
            self.stop()
            raise

    def _start_services(self) -> StackInfo:
        self.moto_port = self._moto.get_host_and_port()[1]
        moto_url = f"http://{self.host}:{self.moto_port}"

        self._set_env(
            {
                "AWS_ENDPOINT_URL": moto_url,
                "AWS_DEFAULT_REGION": cfn.REGION,
                "AWS_REGION": cfn.REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                "AWS_PROFILE": None,
                "AWS_SESSION_TOKEN": None,
                "AWS_SECURITY_TOKEN": None,
            }
        )
        self._create_resources(moto_url)
        for logical_id in cfn.resources_of(self.template, cfn.SERVERLESS_FUNCTION):
            self._set_env(cfn.function_env(self.template, logical_id, self.resources))
        for layer in cfn.layer_dirs(self.template):
            layer_dir = (self.root / layer).resolve()
            for candidate in (layer_dir / "python", layer_dir):  # /opt/python, as Lambda mounts it
                if candidate.is_dir() and str(candidate) not in sys.path:
                    sys.path.insert(0, str(candidate))
                    self._added_paths.append(str(candidate))
                    break
        _forget_cached_clients()

        functions = Functions(self.template, self.root)
        self._preload(functions)
        demo = self._demo_key()

        handler = type("Handler", (_HttpHandler,), {"gateway": Gateway(self.template, self.root, functions)})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._http_thread = threading.Thread(target=self._httpd.serve_forever, name="local-api", daemon=True)
        self._http_thread.start()

        self._stopping.clear()
        for source in cfn.sqs_sources(self.template):
            if not source.enabled:
                continue
            arn = cfn.Resolver(self.template, self.resources).get_att(source.queue, "Arn")
            poller = SqsPoller(functions, source, self.resources[source.queue], arn, moto_url, self._stopping)
            poller.start()
            self._pollers.append(poller)

        self.info = StackInfo(
            api_url=f"http://{self.host}:{self.port}",
            moto_url=moto_url,
            port=self.port,
            moto_port=self.moto_port,
            org=self.org,
            bucket=self.bucket,
            demo_key=demo.api_key if demo else None,
            demo_key_id=demo.key_id if demo else None,
        )
        return self.info

    def stop(self) -> None:
        self._stopping.set()
        for poller in self._pollers:
            poller.join(timeout=10)
        self._pollers.clear()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._moto:
            try:  # moto's state is per process: leave none behind for whoever runs next
                reset = urllib.request.Request(f"http://{self.host}:{self.moto_port}/moto-api/reset", method="POST")
                urllib.request.urlopen(reset, timeout=5).close()
            except OSError:
                log.warning("could not reset moto")
            self._moto.stop()
            self._moto = None
        for path in self._added_paths:
            if path in sys.path:
                sys.path.remove(path)
        self._added_paths.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        _forget_cached_clients()

    # -------------------------------------------------------- helpers
    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _create_resources(self, moto_url: str) -> None:
        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=moto_url,
                region_name=cfn.REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        self.resources.update(cfn.create_tables(client("dynamodb"), self.template))
        self.resources.update(cfn.create_queues(client("sqs"), self.template))
        self.resources.update(cfn.create_buses(client("events"), self.template, self.resources))

    def _preload(self, functions: Functions) -> None:
        """Import every handler now, so that a broken one shows at startup (its routes answer 5xx)."""
        for logical_id in cfn.resources_of(self.template, cfn.SERVERLESS_FUNCTION):
            try:
                functions.handler(logical_id)
            except Exception as exc:
                log.warning("%s is not importable yet: %s: %s", logical_id, type(exc).__name__, exc)

    def _demo_key(self) -> Any:
        if not self.create_demo_key:
            return None
        try:
            from segments import auth
        except ImportError as exc:
            log.warning("no demo key: segments.auth is not importable (%s)", exc)
            return None
        return auth.create_api_key(self.org, self.bucket, label="local demo")


def _ensure_free(host: str, port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"{what} port {host}:{port} is not available: {exc.strerror}") from exc


def _forget_cached_clients() -> None:
    """The core caches its boto3 client and settings; drop them when the environment changes."""
    for name in ("segments.storage", "segments.idempotency"):
        reset = getattr(sys.modules.get(name), "reset", None)
        if callable(reset):
            reset()


def banner(info: StackInfo) -> str:
    key = info.demo_key or "<no key: segments.auth is not available>"
    base = info.api_url
    return "\n".join(
        [
            "",
            "Segments local stack is up (Ctrl-C stops it; data lives until then)",
            f"  API                 {base}",
            f"  moto (AWS services) {info.moto_url}",
            f"  Swagger UI          {base}{DOCS_PATH}",
            f"  demo key            {key}   (org {info.org}, bucket {info.bucket})",
            "",
            "Minerva surface:",
            f"  curl -s -X POST {base}/v2/segments/create -H 'x-api-key: {key}' "
            "-H 'content-type: application/json' -d '{\"name\": \"My first segment\"}'",
            "",
            "SheepCRM surface:",
            f"  curl -s -X POST {base}/segments/v2/{info.bucket}/create -H 'Authorization: Bearer {key}' "
            '-H \'content-type: application/json\' -d \'{"name": "My first segment", "resource_type": "person"}\'',
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--moto-port", type=int, default=5000)
    parser.add_argument("--org", default="demo-org")
    parser.add_argument("--bucket", default="demo")
    parser.add_argument("--template", default=str(cfn.REPO_ROOT / "template.yaml"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):  # moto's access log, credential notes
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stack = LocalStack(args.template, args.host, args.port, args.moto_port, args.org, args.bucket)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        info = stack.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(banner(info), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
