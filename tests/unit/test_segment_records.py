"""A segment item is read into a `SegmentRecord` (store/segments.py) and each surface renders the
record field by field: an attribute stored on the item is public only once a surface renders it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segments.store.dynamo import from_item, to_item
from segments.store.segments import SegmentRecord
from segments.surfaces.minerva_segments import segment_view
from segments.surfaces.sheep import SheepSegment
from segments.surfaces.sheep_segments import sheep_body

SEGMENT_ID = "0b6c3a52-5d0e-4c8e-9a55-6f1f3c1a2b3c"
# What a segment item holds besides its fields: keys, the lease, the name key, and attributes
# nothing renders (one a future feature might add, with a value that must never be served).
NOT_PUBLIC = {
    "pk": "ORG#org-a",
    "sk": f"SEG#{SEGMENT_ID}",
    "gsi1pk": "ORG#org-a#SEGMENTS",
    "gsi1sk": f"2024-01-01T00:00:00.000000Z#{SEGMENT_ID}",
    "name_key": "donors",
    "lease_owner": "req_x",
    "lease_until": 10**14,
    "size_dirty": False,
    "members_written": True,
    "export_secret": "s3cr3t-export-token",
    "webhook": {"url": "https://example.invalid/hook", "signing_key": "s3cr3t-signing-key"},
}
MINERVA_FIELDS = {
    "segment_id",
    "org_id",
    "bucket",
    "name",
    "description",
    "source",
    "segment_type",
    "resource_type",
    "rules",
    "tags",
    "parent_segment",
    "uris_include",
    "uris_exclude",
    "view_context",
    "active",
    "system_segment",
    "mailchimp_sync",
    "current_size",
    "created_at",
    "updated_at",
    "record_state",
    "deleted_at",
    "created_by_request",
    "definition_version",
    "build_state",
    "build_progress",
}


def stored(**fields: Any) -> SegmentRecord:
    """A segment record as the store builds it from an item read back from DynamoDB."""
    item = {
        "segment_id": SEGMENT_ID,
        "org_id": "org-a",
        "bucket": "org-a",
        "name": "Donors",
        "source": "sheepcrm",
        "segment_type": "dynamic",
        "resource_type": "person",
        "rules": [{"field": "age", "operator": "greater_than", "value": 30}],
        "tags": ["t"],
        "uris_include": [],
        "uris_exclude": [],
        "view_context": ["crm"],
        "active": True,
        "system_segment": False,
        "mailchimp_sync": False,
        "current_size": 3,
        "created_at": "2024-01-01T00:00:00.000000Z",
        "updated_at": "2024-01-02T00:00:00.000000Z",
        "record_state": "active",
        "definition_version": 2,
        "build_state": "building",
        "build_progress": {"chunk": 1},
        **NOT_PUBLIC,
        **fields,
    }
    return SegmentRecord.of_item(from_item(to_item(item)))


def leaks(rendered: dict[str, Any]) -> list[str]:
    """The attributes of NOT_PUBLIC (by name or by a value only they hold) found in a rendering."""
    text = json.dumps(rendered)
    found = [name for name in NOT_PUBLIC if f'"{name}"' in text]
    return found + [secret for secret in ("s3cr3t-export-token", "s3cr3t-signing-key", "req_x") if secret in text]


def test_the_record_holds_only_the_segment_fields() -> None:
    record = stored()
    assert not hasattr(record, "export_secret") and "export_secret" not in record
    with pytest.raises(KeyError):
        record["webhook"]
    assert record.get("pk") is None and record.get("lease_owner", "none") == "none"
    assert record["name_key"] == "donors"  # what the conditional writes compare: no surface renders it


def test_neither_surface_renders_an_attribute_it_does_not_name() -> None:
    record = stored()
    minerva, sheep = segment_view(record), sheep_body(record)
    assert leaks(minerva) == [] and leaks(sheep) == []
    assert set(minerva) == MINERVA_FIELDS - {"description", "parent_segment", "deleted_at", "created_by_request"}
    assert set(sheep) == set(SheepSegment.model_fields)
    assert (minerva["current_size"], minerva["build_progress"], sheep["uid"]) == (
        3,
        {"chunk": 1},
        SEGMENT_ID.replace("-", ""),
    )


def test_minerva_serves_what_the_segment_holds_and_only_that() -> None:
    """A field the item does not hold is absent (not null), as before records were typed."""
    full = segment_view(stored(description="d", parent_segment="/org-a/segment/x/", created_by_request="req_1"))
    assert set(full) == MINERVA_FIELDS - {"deleted_at"}
    bare = SegmentRecord.of_item({"segment_id": SEGMENT_ID, "org_id": "org-a", "name": "Legacy", **NOT_PUBLIC})
    assert segment_view(bare) == {"segment_id": SEGMENT_ID, "org_id": "org-a", "name": "Legacy"}
    legacy = sheep_body(bare)  # SheepCRM's shape has every field: what the item lacks reads as its default
    assert (legacy["segment_type"], legacy["active"], legacy["tags"], legacy["definition_version"]) == (
        "static",
        True,
        [],
        1,
    )
    assert leaks(legacy) == []
