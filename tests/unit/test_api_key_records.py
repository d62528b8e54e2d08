"""An API key item is read into an `ApiKeyRecord` (store/api_keys.py) and `segments-admin
list-api-keys` renders it field by field: never the hash, nor any attribute it does not name."""

from __future__ import annotations

import json

from segments.cli.admin import _key_view
from segments.store.api_keys import ApiKeyRecord
from segments.store.dynamo import from_item, to_item


def test_a_listed_key_shows_only_the_fields_the_cli_names() -> None:
    item = {
        "pk": "KEYID#key_1",
        "sk": "KEY",
        "gsi1pk": "ORG#acme#KEYS",
        "gsi1sk": "2024-01-01T00:00:00.000000Z#key_1",
        "key_id": "key_1",
        "key_hash": "h4sh-of-the-key",
        "org_id": "acme",
        "bucket": "acme",
        "status": "active",
        "created_at": "2024-01-01T00:00:00.000000Z",
        "rotation_secret": "s3cr3t",
    }
    shown = _key_view(ApiKeyRecord.of_item(from_item(to_item(item))))
    assert shown == {
        "key_id": "key_1",
        "org_id": "acme",
        "bucket": "acme",
        "status": "active",
        "created_at": "2024-01-01T00:00:00.000000Z",
    }
    text = json.dumps(shown)
    assert "h4sh" not in text and "s3cr3t" not in text
    labelled = _key_view(ApiKeyRecord.of_item({**item, "label": "ci", "updated_at": "2024-01-02T00:00:00.000000Z"}))
    assert (labelled["label"], labelled["updated_at"]) == ("ci", "2024-01-02T00:00:00.000000Z")
