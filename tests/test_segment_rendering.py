"""An attribute stored on a segment item is not served until a surface renders it: every route of
both surfaces that answers a segment, with attributes on the item that no surface names."""

from __future__ import annotations

import uuid
from typing import Any

from helpers.raw_table import raw, segment_key

from conftest import Api, ApiResponse, Org

SECRET = "s3cr3t-not-for-callers"
UNNAMED = ("export_secret", "webhook_signing", "name_key", "lease_owner", "gsi1pk", "members_written")


def store_unnamed_attributes(org: Org, segment_id: str) -> None:
    """What a later feature (or the member-write lease) might store on the item, straight into the table."""
    raw().update_item(
        TableName="SegmentsTable",
        Key=segment_key(org.org_id, segment_id),
        UpdateExpression="SET export_secret = :s, webhook_signing = :w, lease_owner = :o, lease_until = :u",
        ExpressionAttributeValues={
            ":s": {"S": SECRET},
            ":w": {"M": {"key": {"S": SECRET}}},
            ":o": {"S": SECRET},
            ":u": {"N": "0"},
        },
    )


def served(resp: ApiResponse) -> ApiResponse:
    assert resp.status in (200, 201), resp.text
    assert SECRET not in resp.text
    for name in UNNAMED:
        assert f'"{name}"' not in resp.text, name
    return resp


def test_no_surface_serves_an_attribute_it_does_not_render(api: Api, org: Org) -> None:
    base = f"/segments/v2/{org.bucket}"
    tree = api.post(
        f"{base}/create", bearer=org.key, body={"name": "Tree", "resource_type": "person", "segment_type": "auxiliary"}
    ).json
    body: dict[str, Any] = {
        "name": "Hidden",
        "resource_type": "person",
        "segment_type": "static",
        "view_context": ["crm"],
        "parent_segment": tree["uri"],
    }
    seg = api.post(f"{base}/create", bearer=org.key, body=body).json
    segment_id, uid = str(uuid.UUID(seg["uid"])), seg["uid"]
    store_unnamed_attributes(org, segment_id)

    # Minerva: get, list, update, delete
    got = served(api.get(f"/v2/segments/{segment_id}", key=org.key)).json
    assert got["name"] == "Hidden" and got["view_context"] == ["crm"]
    listed = served(api.get("/v2/segments", key=org.key)).json["results"]["items"]
    assert segment_id in [s["segment_id"] for s in listed]
    served(api.request("PATCH", f"/v2/segments/{segment_id}", key=org.key, body={"description": "d"}))
    # SheepCRM: the listings, find, a view context, trees, count, update, delete, restore
    for path, query in ((base, {}), (f"{base}/all", {}), (f"{base}/find", {"name": "hid"}), (f"{base}/crm", {})):
        found = served(api.get(path, bearer=org.key, query=query)).json["segments"]
        assert uid in [s["uid"] for s in found], path
    roots = served(api.get(f"{base}/trees", bearer=org.key)).json["segments"]
    assert [c["uid"] for r in roots for c in r["children"]] == [uid]
    served(api.get(f"{base}/segment/{uid}/count", bearer=org.key))
    served(api.request("PUT", f"{base}/segment/{uid}", bearer=org.key, body={"tags": ["x"]}))
    served(api.delete(f"{base}/segment/{uid}", bearer=org.key))
    served(api.post(f"{base}/segment/{uid}/restore", bearer=org.key))
    served(api.delete(f"/v2/segments/{segment_id}", key=org.key))
