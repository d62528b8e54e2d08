"""The template's REST APIs: routes, authorizers, gateway responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.cfn.functions import function, logical_id_of
from tools.cfn.template import (
    IMPLICIT_API,
    SERVERLESS_API,
    SERVERLESS_FUNCTION,
    Resolver,
    resources_of,
)


@dataclass(frozen=True)
class Route:
    api: str  # logical id of the AWS::Serverless::Api
    path: str
    method: str  # upper case; ANY matches every method
    function: str  # logical id
    code_uri: str
    handler: str
    authorizer: str | None  # effective authorizer name (None: open)
    event: str = ""  # name of the Api event in the function


@dataclass(frozen=True)
class Authorizer:
    name: str
    function: str  # logical id
    payload_type: str  # REQUEST or TOKEN
    headers: tuple[str, ...]
    query_strings: tuple[str, ...]
    reauthorize_every: int  # seconds the result is cached (0: never)


@dataclass(frozen=True)
class GatewayResponse:
    status_code: str | None
    templates: dict[str, str]
    headers: dict[str, str]  # static header values, quotes removed


@dataclass(frozen=True)
class Api:
    logical_id: str
    stage_name: str
    authorizers: dict[str, Authorizer]
    default_authorizer: str | None
    gateway_responses: dict[str, GatewayResponse]
    api_key_source: str = "HEADER"  # ApiKeySourceType: HEADER (x-api-key) or AUTHORIZER (usageIdentifierKey)
    api_key_required: bool = False  # Auth.ApiKeyRequired: every route needs a key of a usage plan


def apis(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Api]:
    """Every AWS::Serverless::Api (plus SAM's implicit one when an Api event uses it)."""
    resolver = Resolver(template, parameters=parameters or {})
    global_props = (template.get("Globals") or {}).get("Api") or {}
    declared = dict(resources_of(template, SERVERLESS_API))
    if any(route_api == IMPLICIT_API for route_api, _, _ in _api_events(template)):
        declared.setdefault(IMPLICIT_API, {"StageName": "Prod"})
    result: dict[str, Api] = {}
    for logical_id, own in declared.items():
        props = {**global_props, **own}
        auth = props.get("Auth") or {}
        authorizers = {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            payload_type = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
            identity = spec.get("Identity") or {}
            headers = identity.get("Headers") or []
            if payload_type == "TOKEN" and not headers:
                headers = [identity.get("Header", "Authorization")]
            ttl = resolver.resolve(identity.get("ReauthorizeEvery", 300))
            authorizers[name] = Authorizer(
                name=name,
                function=logical_id_of(spec.get("FunctionArn")) or "",
                payload_type=payload_type,
                headers=tuple(headers),
                query_strings=tuple(identity.get("QueryStrings") or []),
                reauthorize_every=int(ttl),
            )
        responses = {}
        for response_type, spec in (props.get("GatewayResponses") or {}).items():
            spec = resolver.resolve(spec)
            headers = ((spec.get("ResponseParameters") or {}).get("Headers")) or {}
            responses[response_type] = GatewayResponse(
                status_code=str(spec["StatusCode"]) if spec.get("StatusCode") is not None else None,
                templates=dict(spec.get("ResponseTemplates") or {}),
                headers={k: str(v).strip("'") for k, v in headers.items()},
            )
        default = auth.get("DefaultAuthorizer")
        result[logical_id] = Api(
            logical_id=logical_id,
            stage_name=str(resolver.resolve(props.get("StageName", "Prod"))),
            authorizers=authorizers,
            default_authorizer=None if default in (None, "NONE", "AWS_IAM") else str(default),
            gateway_responses=responses,
            api_key_source=str(props.get("ApiKeySourceType", "HEADER")).upper(),
            api_key_required=str(auth.get("ApiKeyRequired", False)).lower() == "true",
        )
    return result


def _api_events(template: dict[str, Any]):
    """(api logical id, function logical id, event name + properties) of every Api event."""
    for function_id, props in resources_of(template, SERVERLESS_FUNCTION).items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == "Api":
                event_props = event.get("Properties") or {}
                api = logical_id_of(event_props.get("RestApiId")) or IMPLICIT_API
                yield api, function_id, (event_name, event_props)


def api_routes(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[Route]:
    """Every `Type: Api` event of every AWS::Serverless::Function, with its effective authorizer."""
    api_specs = apis(template, parameters)
    routes = []
    for api, function_id, (event_name, props) in _api_events(template):
        fn = function(template, function_id)
        auth = (props.get("Auth") or {}).get("Authorizer")
        if auth is None:
            authorizer = api_specs[api].default_authorizer
        else:
            authorizer = None if auth in ("NONE", "AWS_IAM") else str(auth)
        routes.append(
            Route(
                api=api,
                path=str(props["Path"]),
                method=str(props["Method"]).upper(),
                function=function_id,
                code_uri=fn.code_uri,
                handler=fn.handler,
                authorizer=authorizer,
                event=event_name,
            )
        )
    return routes
