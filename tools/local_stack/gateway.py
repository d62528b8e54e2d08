"""API Gateway (REST API, Lambda proxy integration) for the APIs of one template; no sockets here."""

from __future__ import annotations

import base64
import logging
import time
import traceback
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tools import cfn
from tools.local_stack.authorizer import Authorizers
from tools.local_stack.responses import gateway_response
from tools.local_stack.routing import Request, Response, Router, header, path_segments, short_id
from tools.local_stack.runtime import Runtime
from tools.local_stack.usage_plans import UsagePlans

log = logging.getLogger("local_stack")

MAX_BODY_BYTES = 6_291_456  # Lambda's 6 MB payload limit (API Gateway's own is 10 MB)
DOCS_PATH = "/v2/docs"
OPENAPI_PATH = "/v2/docs/openapi.json"
# Swagger UI's own files, served from the swagger-ui-bundle-v2 package (Apache-2.0, its licence in
# the package's metadata), so that the docs page works offline.
DOCS_ASSETS = "/v2/docs/assets/"
ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


class Gateway:
    """API Gateway (REST, Lambda proxy) for the APIs of one template; no sockets here."""

    def __init__(self, template: dict[str, Any], root: Path, runtime: Runtime) -> None:
        self.apis = cfn.apis(template)
        self.router = Router(cfn.api_routes(template), list(self.apis))
        self.runtime = runtime
        self.root = root
        self.api_ids = {name: short_id(name, 10) for name in self.apis}
        self.authorizers = Authorizers(self.apis, self.api_ids, runtime)
        self.usage_plans = UsagePlans()

    # -------------------------------------------------------- entry point
    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        started = time.time()
        split = urlsplit(request.raw_path)
        docs = split.path.rstrip("/")
        if request.method in ("GET", "HEAD") and (docs in (DOCS_PATH, OPENAPI_PATH) or docs.startswith(DOCS_ASSETS)):
            response = self._docs(docs, request_id)
            response.headers.append(("x-api-request-id", "req_" + request_id.replace("-", "")))
        else:
            response = self._route(request, split.path, split.query, request_id, started)
        response.headers.append(("x-amzn-RequestId", request_id))
        response.request_id = request_id
        return response

    def gateway_response(
        self, api: str, response_type: str, request_id: str, message: str | None = None, path: str = "/"
    ) -> Response:
        return gateway_response(self.apis[api], self.api_ids[api], response_type, request_id, message, path)

    # -------------------------------------------------------- routing and integration
    def _route(self, request: Request, raw_path: str, query: str, request_id: str, started: float) -> Response:
        path = "/" + "/".join(path_segments(raw_path))  # decoded; matching splits the raw path first
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
            "resourceId": short_id(f"{route.api}{route.path}", 6),
            "resourcePath": route.path,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(started)),
            "requestTimeEpoch": int(started * 1000),
            "path": f"/{stage}{path}",
            "stage": stage,
            "domainName": header(request.headers, "host") or "127.0.0.1",
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
                "apiKeyId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": header(request.headers, "user-agent"),
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
            outcome = self.authorizers.authorize(route, event, request.headers, request_id)
            if isinstance(outcome, Response):
                return outcome
            request_context["authorizer"] = outcome
        if api.api_key_required and api.api_key_source == "AUTHORIZER":
            refused = self.usage_plans.admit(request_context["identity"].get("apiKeyId"))
            if refused:
                return self.gateway_response(route.api, refused, request_id, path=path)
        return self._integrate(route, event, request_id, path)

    def _integrate(self, route: cfn.Route, event: dict[str, Any], request_id: str, path: str) -> Response:
        try:
            result = self.runtime.invoke(route.function, event)
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
        if path.startswith(DOCS_ASSETS):
            name = path[len(DOCS_ASSETS) :]
            if name not in ASSET_TYPES:
                return self.gateway_response(self.router.api_for(path), "RESOURCE_NOT_FOUND", request_id, path=path)
            from swagger_ui_bundle import swagger_ui_path

            body = (swagger_ui_path / name).read_bytes()
            return Response(200, [("Content-Type", ASSET_TYPES[name]), ("Cache-Control", "max-age=3600")], body)
        spec = self.root / "docs" / "openapi.json"
        if not spec.is_file():
            return self.gateway_response(self.router.api_for(path), "RESOURCE_NOT_FOUND", request_id, path=path)
        return Response(200, [("Content-Type", "application/json")], spec.read_bytes())


SWAGGER_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Segments API</title>
  <link rel="stylesheet" href="{DOCS_ASSETS}swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_ASSETS}favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_ASSETS}swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""
