"""Generate docs/openapi.json from the code: every API function's resolver, merged.

    python -m tools.openapi            # write docs/openapi.json
    python -m tools.openapi --check    # exit 1 when the committed file is stale

The functions that serve routes are found in template.yaml, so the spec describes exactly the
handlers that are deployed; each handler module's `app` (a Powertools resolver) gives its paths.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.json"
TITLE = "Segments API"
VERSION = "2.0.0"
DESCRIPTION = (
    "Named cohorts of people. Two wire formats over one core: the Minerva-style `/v2/segments` API "
    "(header `x-api-key`) and the SheepCRM-style `/segments/v2/{bucket}` API (`Authorization: Bearer`). "
    "Every response carries the request id in header `x-api-request-id` (and in the body on the "
    "Minerva surface). Mutating endpoints accept `Idempotency-Key`."
)


SHEEP_PREFIX = "/segments/"

IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry-safe key: the same key and body within 24 h return the first response; "
    "the same key with another body is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _load_handler(code_uri: str) -> ModuleType:
    name = "openapi_" + re.sub(r"\W", "_", code_uri.strip("/"))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / code_uri / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _powertools_schemes() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    return {"ApiKeyAuth": APIKey(name="x-api-key", in_=APIKeyIn.header), "BearerAuth": HTTPBearer()}


def _security_schemes() -> dict[str, Any]:
    return {
        "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "BearerAuth": {"type": "http", "scheme": "bearer"},
    }


def build() -> dict[str, Any]:
    """The merged OpenAPI document (a dict), deterministic for a given code base."""
    for path in (str(ROOT / "layers" / "core"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("TABLE_NAME", "SegmentsTable")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from tools import cfn

    template = cfn.load_template(ROOT / "template.yaml")
    code_uris = sorted({route.code_uri for route in cfn.api_routes(template)})
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for code_uri in code_uris:
        if not (ROOT / code_uri / "handler.py").exists():
            print(f"warning: {code_uri}handler.py is missing; its routes are left out", file=sys.stderr)
            continue
        app = getattr(_load_handler(code_uri), "app", None)
        if app is None:
            continue
        part = json.loads(
            app.get_openapi_json_schema(title=TITLE, version=VERSION, security_schemes=_powertools_schemes())
        )
        for path, operations in part.get("paths", {}).items():
            paths.setdefault(path, {}).update(operations)
        for name, component in part.get("components", {}).get("schemas", {}).items():
            # one name, one shape: two functions' models of one name would silently share a schema
            if name in schemas and schemas[name] != component:
                raise ValueError(f"two different schemas are named {name} ({code_uri} and an earlier function)")
            schemas[name] = component

    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in {"post", "put", "patch", "delete"}:
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
            if path.startswith(SHEEP_PREFIX):
                # Powertools documents its own 422 on every validating route; the SheepCRM surface
                # answers every validation error with 400 validation_error instead.
                operation["responses"].pop("422", None)

    from segments.surfaces import minerva

    schemas.update(_model_schemas(minerva.ErrorBody))
    try:
        from segments.surfaces import sheep
    except ImportError:
        sheep = None  # type: ignore[assignment]
    if sheep is not None and hasattr(sheep, "ErrorBody"):
        schemas.update(_model_schemas(sheep.ErrorBody, name="SheepErrorBody"))

    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "http://127.0.0.1:3000", "description": "local stack (make local)"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": _security_schemes()},
    }


def _model_schemas(model: Any, name: str | None = None) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, (name or model.__name__): schema}


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/openapi.json is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print("docs/openapi.json is stale: run `make openapi`", file=sys.stderr)
            return 1
        print("docs/openapi.json is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(build()['paths'])} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
