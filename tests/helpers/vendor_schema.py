"""Validate SheepCRM surface responses against the vendor's own OpenAPI document.

`tests/vendor/sheepcrm_segments_openapi.yaml` is a copy of the `/segments/v2` paths of the vendor's
published document and the component schemas they reference (its header names the repository and
commit). `validate_vendor(method, path_template, status, body)` finds the vendor's response schema
for that operation and status and validates `body` with jsonschema; any difference fails the test.

The vendor's document is OpenAPI 3.0: schemas are JSON Schema with extra keywords (`example`,
`description`) that jsonschema ignores, and `$ref`s into `#/components/schemas`, which are inlined
here. Where the document is loose or contradicts itself, a reading is applied to its schema before
validating (READINGS and REQUIRED below); each is written in docs/decisions.md ("SheepCRM: readings
of the vendor's document"). The vendor marks nothing required, so without REQUIRED a body lacking
`segments` would pass: the listed components' properties are all required (the create seed lists
each of them in the answer). Nothing is relaxed: an extra key is allowed because the vendor's
schemas allow extra keys (no `additionalProperties: false`), a null where the vendor says string
fails (the vendor marks nothing nullable).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

VENDOR_FILE = Path(__file__).resolve().parent.parent / "vendor" / "sheepcrm_segments_openapi.yaml"

# (component, property) -> the schema used instead of the vendor's, with the reason in decisions.md.
READINGS: dict[tuple[str, str], dict[str, Any]] = {
    # single_segment.rules says `object`, while the same document's create (and the create seed)
    # take `rules` as an array of {field, operator, value}: a segment answers the array it was given.
    ("single_segment", "rules"): {"type": "array", "items": {"type": "object"}},
}

# Components (and inline response schemas, by operation) whose every property a response carries.
REQUIRED_COMPONENTS = ("all", "single_segment", "count")
REQUIRED_INLINE = {("get", "/segments/v2/{bucket}/trees", "200")}


@functools.cache
def vendor_document() -> dict[str, Any]:
    with VENDOR_FILE.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    schemas = doc["components"]["schemas"]
    for (component, prop), schema in READINGS.items():
        assert prop in schemas[component]["properties"], f"reading of a property the vendor lacks: {component}.{prop}"
        schemas[component]["properties"][prop] = schema
    for component in REQUIRED_COMPONENTS:
        schemas[component]["required"] = list(schemas[component]["properties"])
    for method, path, status in REQUIRED_INLINE:
        inline = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        inline["required"] = list(inline["properties"])
    return doc


def _inline(node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name not in seen, f"recursive vendor schema {name}"
            return _inline(schemas[name], schemas, (*seen, name))
        return {k: _inline(v, schemas, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, schemas, seen) for v in node]
    return node


def _template(path_template: str) -> str:
    """`/segments/v2/<bucket>/x` (this project's route form) or `{bucket}` (OpenAPI's) -> OpenAPI's."""
    return re.sub(r"<([a-z_]+)>", r"{\1}", path_template)


def vendor_component(name: str) -> dict[str, Any]:
    """A component schema of the vendor's document (e.g. "error", "single_segment"), refs inlined."""
    doc = vendor_document()
    return dict(_inline(copy.deepcopy(doc["components"]["schemas"][name]), doc["components"]["schemas"]))


def vendor_response_schema(method: str, path_template: str, status: int) -> dict[str, Any] | None:
    """The vendor's JSON schema for a response (None when the vendor declares the status without a
    body schema). KeyError when the vendor declares no such operation or status."""
    doc = vendor_document()
    operation = doc["paths"][_template(path_template)][method.lower()]
    response = operation["responses"][str(status)]
    content = response.get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return None
    return dict(_inline(copy.deepcopy(content["schema"]), doc["components"]["schemas"]))


def validate_vendor(method: str, path_template: str, status: int, body: Any) -> None:
    """Raise AssertionError unless `body` is valid for the vendor's response `status` of
    `method path_template` (e.g. "GET", "/segments/v2/{bucket}/all", 200)."""
    schema = vendor_response_schema(method, path_template, status)
    if schema is None:
        return
    validator = jsonschema.Draft4Validator(schema)
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in problems[:10]]
        raise AssertionError(
            f"{method.upper()} {path_template} {status} does not match the vendor's schema:\n" + "\n".join(lines)
        )


def validate_vendor_error(body: Any) -> None:
    """The vendor's `error` component (the body of its 400s; this surface answers it on every error)."""
    problems = list(jsonschema.Draft4Validator(vendor_component("error")).iter_errors(body))
    if problems:
        raise AssertionError(f"error body does not match the vendor's `error`: {problems[0].message}")
