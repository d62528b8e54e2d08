"""The vendor schema helper itself: it finds each operation's schema and fails on drift."""

from __future__ import annotations

import pytest

from tests.helpers.vendor_schema import (
    validate_vendor,
    validate_vendor_error,
    vendor_document,
    vendor_response_schema,
)

SEGMENT = {
    "active": True,
    "created": "2024-01-01T00:00:00.000000",
    "description": "",
    "display_value": "A",
    "last_updated": "2024-01-01T00:00:00.000000",
    "legacy_uid": "",
    "mailchimp_sync": False,
    "name": "A",
    "parent_segment": "",
    "record_state": "active",
    "resource_type": "person",
    "rules": [],
    "segment_type": "static",
    "system_segment": False,
    "tags": [],
    "uid": "0" * 32,
    "uri": f"/b/segment/{'0' * 32}/",
    "uris_exclude": [],
    "uris_include": [],
    "user_interface": {},
    "view_context": [],
}


def test_the_copy_names_its_source_and_holds_every_vendor_segments_path() -> None:
    from tests.helpers.vendor_schema import VENDOR_FILE

    head = VENDOR_FILE.read_text(encoding="utf-8")[:600]
    assert "sheepCRM/sheepcrm-api-docs" in head and "openapi.yaml" in head
    assert "05e816a50af13625b005acbc087ed418cf2fe980" in head
    paths = vendor_document()["paths"]
    assert len(paths) == 18 and all(p.startswith("/segments/v2/{bucket}") for p in paths)
    assert sum(len(ops) for ops in paths.values()) == 20  # the vendor's 20 Segments operations


def test_a_list_passes_with_the_vendor_key_and_extra_paging_keys() -> None:
    validate_vendor("GET", "/segments/v2/{bucket}/all", 200, {"segments": [SEGMENT], "count": 1, "next_page": None})
    validate_vendor("get", "/segments/v2/<bucket>", 200, {"segments": []})


@pytest.mark.parametrize(
    "body",
    [
        {"results": [SEGMENT]},  # the wrapper of old
        {"segments": [{**SEGMENT, "active": "yes"}]},
        {"segments": [{**SEGMENT, "parent_segment": None}]},  # no nulls
        {"segments": [{k: v for k, v in SEGMENT.items() if k != "name"}]},
        {"segments": [{**SEGMENT, "segment_type": "smart"}]},
    ],
)
def test_a_drifted_list_fails(body: dict) -> None:
    with pytest.raises(AssertionError, match="vendor's schema"):
        validate_vendor("GET", "/segments/v2/{bucket}/all", 200, body)


def test_trees_need_the_segments_key() -> None:
    validate_vendor("GET", "/segments/v2/{bucket}/trees", 200, {"segments": [{**SEGMENT, "children": []}]})
    with pytest.raises(AssertionError):
        validate_vendor("GET", "/segments/v2/{bucket}/trees", 200, {"results": []})


def test_unknown_operations_and_statuses_are_errors_not_passes() -> None:
    with pytest.raises(KeyError):
        validate_vendor("GET", "/segments/v2/{bucket}/nothing", 200, {})
    with pytest.raises(KeyError):
        validate_vendor("DELETE", "/segments/v2/{bucket}/all", 200, {})
    with pytest.raises(KeyError):
        validate_vendor("GET", "/segments/v2/{bucket}/all", 404, {})
    assert vendor_response_schema("GET", "/segments/v2/{bucket}/segment/{uid}/all", 200) is None  # no body schema


def test_the_error_shape() -> None:
    validate_vendor_error({"error": "Validation error", "description": "x", "type": "validation_error"})
    validate_vendor("POST", "/segments/v2/{bucket}/create", 400, {"error": "e", "description": "d", "type": "t"})
    with pytest.raises(AssertionError):
        validate_vendor_error({"error": {"param": "batch_size"}, "description": "d", "type": "t"})


# this surface's own operations beside the vendor's (docs/api.md#sheepcrm-surface)
OURS = {
    ("PUT", "/segments/v2/{bucket}/segment/{uid}"),
    ("DELETE", "/segments/v2/{bucket}/segment/{uid}"),
    ("POST", "/segments/v2/{bucket}/segment/{uid}/restore"),
    # a segment's members' signals, and the progress of a bulk action (its notification_uri)
    ("GET", "/segments/v2/{bucket}/segment/{uid}/signals"),
    ("GET", "/segments/v2/{bucket}/notification/{uid}"),
    # an export's progress (its journal_uri), and a fieldset deleted by its path (docs/api.md#fieldsets)
    ("GET", "/segments/v2/{bucket}/journal/{uid}"),
    ("DELETE", "/segments/v2/{bucket}/fieldset/{uid}"),
}


def test_every_sheepcrm_route_is_a_vendor_operation_or_one_of_ours() -> None:
    """A route spelled unlike the vendor's path (or with another method) is not the vendor's
    operation, and its responses would be validated against nothing."""
    from conftest import template
    from tools import cfn

    paths = vendor_document()["paths"]
    routed = {(r.method, r.path) for r in cfn.api_routes(template()) if r.path.startswith("/segments/v2/")}
    assert routed
    for method, path in sorted(routed - OURS):
        assert method.lower() in paths.get(path, {}), f"{method} {path} is not in the vendor's document"
