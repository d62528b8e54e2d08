"""One resolver factory for both surfaces.

A surface (minerva.SURFACE, sheep.SURFACE) says how each kind of failure is rendered in its wire
format; `resolver()` installs the same handlers on every app, in one order, so both surfaces map
the same failures the same way. Routes are declared once per module (`Routes`) and registered on
a fresh Router for every app, so no Router object is shared between two resolvers (two handler
modules, or two execution environments of one function).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from segments import errors
from segments.observability import logger
from segments.surfaces.http import json_body


class Surface(Protocol):
    """How one wire format renders each kind of failure."""

    def invalid_request(self, errs: list[Any]) -> Response: ...  # pydantic errors of the request
    def unsupported_body(self) -> Response: ...
    def busy(self, exc: errors.Retryable) -> Response: ...
    def domain(self, exc: errors.DomainError) -> Response: ...
    def no_route(self) -> Response: ...
    def idempotency_key_reused(self) -> Response: ...
    def idempotency_in_progress(self) -> Response: ...
    def internal(self) -> Response: ...


class Routes:
    """Route declarations of one module, registered on a fresh Router per app."""

    def __init__(self) -> None:
        self._declared: list[tuple[str, list[str], dict[str, Any], Callable[..., Any]]] = []

    def route(self, rule: str, method: str | list[str], **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._declared.append((rule, [method] if isinstance(method, str) else method, kwargs, fn))
            return fn

        return declare

    def get(self, rule: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route(rule, "GET", **kwargs)

    def post(self, rule: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route(rule, "POST", **kwargs)

    def put(self, rule: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route(rule, "PUT", **kwargs)

    def patch(self, rule: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route(rule, "PATCH", **kwargs)

    def delete(self, rule: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route(rule, "DELETE", **kwargs)

    def router(self) -> Router:
        router = Router()
        for rule, methods, kwargs, fn in self._declared:
            router.route(rule, methods, **kwargs)(fn)
        return router


def resolver(surface: Surface, *routes: Routes) -> APIGatewayRestResolver:
    """A validating resolver serving `routes`, every failure rendered by `surface`."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=json_body)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return surface.invalid_request(list(exc.errors()))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return surface.unsupported_body()

    @app.exception_handler(errors.Retryable)
    def _busy(exc: errors.Retryable) -> Response:
        logger.warning("store busy", extra={"reason": exc.message})
        return surface.busy(exc)

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        return surface.domain(exc)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        return surface.no_route()

    @app.exception_handler(IdempotencyValidationError)
    def _reused(exc: Exception) -> Response:
        return surface.idempotency_key_reused()

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(exc: Exception) -> Response:
        return surface.idempotency_in_progress()

    @app.exception_handler(Exception)
    def _internal(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return surface.internal()

    for declared in routes:
        app.include_router(declared.router())
    return app
