"""Org ids and buckets are checked against one pattern (models.ORG_ID_RE, docs/limits.md) wherever
they enter: keys minted by segments-admin, the authorizer's principal, person events, import-people.
An org id with '#' would land inside storage keys ("ORG#{org}#PERSON") and read as another key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers.signals import REGION, failures, ingest, person_event, signals_fixture  # noqa: F401 - `signals`

from conftest import Api, Org
from segments import auth
from segments.cli import admin
from segments.models import valid_bucket, valid_org_id
from segments.store import api_keys
from segments.store import signals as signal_store

BAD_ORGS = ["orga#PERSON", "", "a b", "-lead", ".lead", "org/x", "orgä", "o" * 129, "org\n", "ORG#x", "x~y"]
GOOD_ORGS = ["o", "demo-org", "Org_1.2", "o" * 128, "9lives"]


@pytest.mark.parametrize("org_id", GOOD_ORGS)
def test_good_org_ids_pass(org_id: str) -> None:
    assert valid_org_id(org_id)


@pytest.mark.parametrize("org_id", [*BAD_ORGS, None, 7])
def test_bad_org_ids_fail(org_id: Any) -> None:
    assert not valid_org_id(org_id)


@pytest.mark.parametrize("bucket", ["Not A Bucket", "a", "-ab", "ab#c", "ab_c", "a" * 64, None])
def test_bad_buckets_fail(bucket: Any) -> None:
    assert not valid_bucket(bucket)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = admin.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("org_id", ["orga#PERSON", "a b", "o" * 129])
def test_create_api_key_refuses_a_bad_org_and_stores_nothing(
    aws: None, capsys: pytest.CaptureFixture[str], org_id: str
) -> None:
    code, out, err = _run(capsys, "create-api-key", "--org", org_id, "--bucket", "orga")
    assert code == 2 and "org must be" in err and "sk_seg_" not in out
    assert api_keys.list_for_org(org_id) == []
    assert api_keys.bucket_owner("orga") is None  # no bucket claim either


def test_create_system_segment_refuses_a_bad_org(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "create-system-segment", "--org", "a#b", "--bucket", "ab", "--name", "Sys")
    assert code == 2 and "org must be" in err


def test_a_stored_key_of_a_malformed_org_is_refused_by_the_authorizer(aws: None, api: Api) -> None:
    """A key minted before the check (written here as the store would have) no longer authorizes."""
    legacy = "sk_seg_legacy-key-of-a-bad-org"
    api_keys.put(
        {
            "key_id": "key_legacy",
            "key_hash": auth.hash_key(legacy),
            "org_id": "orga#PERSON",
            "bucket": "orga",
            "status": "active",
            "created_at": "2024-01-01T00:00:00.000000Z",
        }
    )
    assert auth.authenticate(legacy) is None
    assert api.get("/v2/segments", key=legacy).status == 401
    assert api.get("/segments/v2/orga", bearer=legacy).status == 401


@pytest.mark.parametrize("org_id", ["orga#PERSON", "a b", ""])
def test_a_profile_event_of_a_bad_org_is_an_invalid_event(org: Org, signals: Any, org_id: str) -> None:
    event = person_event("profile", "p-abc", org_id=org_id, data={"attributes": {"name": "Ada"}})
    assert len(failures(ingest(event))) == 1
    assert signal_store.person(org_id, "p-abc") is None


def test_import_people_refuses_a_bad_org_before_sending(aws: None, signals: Any, tmp_path: Path) -> None:
    url = signals.bus.queues["PersonEventsQueue"]
    people = tmp_path / "p.jsonl"
    people.write_text(json.dumps({"minerva_pid": "p-abc", "tier": "gold"}) + "\n", encoding="utf-8")
    assert admin.main(["import-people", "--org", "orga#PERSON", str(people), "--queue", url]) == 2
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
