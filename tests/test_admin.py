"""segments-admin: create, revoke and list keys; --json for scripts; AWS_ENDPOINT_URL honoured."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from conftest import ENV, ROOT, Api, make_org, template
from segments import auth
from segments.cli import admin
from segments.external import plans
from segments.store import dynamo
from tools import cfn


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = admin.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_prints_the_key_once_and_it_works(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "create-api-key", "--org", "acme", "--bucket", "acme", "--label", "ci")
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"key_id", "api_key", "org_id", "bucket", "plan"}
    assert (created["org_id"], created["bucket"], created["plan"]) == ("acme", "acme", "standard")
    principal = auth.authenticate(created["api_key"])
    assert principal == auth.Principal(created["key_id"], "acme", "acme", plans.ensure_gateway_key("acme"))
    assert Api().post("/v2/segments/create", key=created["api_key"], body={"name": "via admin"}).status == 200


def test_json_flag_may_follow_the_command(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create-api-key", "--org", "acme", "--bucket", "acme", "--json")
    assert code == 0 and json.loads(out)["api_key"].startswith(auth.KEY_PREFIX)


def test_text_output_says_the_key_is_shown_once(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create-api-key", "--org", "acme", "--bucket", "acme")
    assert code == 0 and "api_key: sk_seg_" in out and "only this once" in out


def test_list_never_shows_keys_or_hashes(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    first = auth.create_api_key("acme", "acme", label="one")
    auth.create_api_key("acme", "acme", label="two")
    auth.create_api_key("other", "other")
    code, out, _ = run(capsys, "--json", "list-api-keys", "--org", "acme")
    keys = json.loads(out)
    assert code == 0 and [k["label"] for k in keys] == ["one", "two"]
    assert all(k["org_id"] == "acme" and k["status"] == "active" for k in keys)
    assert first.api_key not in out and auth.hash_key(first.api_key) not in out


def test_list_has_a_header_row_and_aligned_columns(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    first = auth.create_api_key("acme", "acme", label="CRM sync")
    second = auth.create_api_key("acme", "acme")
    code, out, _ = run(capsys, "list-api-keys", "--org", "acme")
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["KEY_ID", "STATUS", "BUCKET", "CREATED_AT", "LABEL"]
    assert [row.split()[:3] for row in rows] == [[first.key_id, "active", "acme"], [second.key_id, "active", "acme"]]
    assert rows[0].endswith("CRM sync")
    assert {line.index("acme") for line in rows} == {header.index("BUCKET")}
    assert run(capsys, "list-api-keys", "--org", "nobody")[1].strip() == "no keys for org nobody"


def test_revoke_stops_the_key(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    created = auth.create_api_key("acme", "acme")
    code, out, _ = run(capsys, "--json", "revoke-api-key", created.key_id)
    assert code == 0 and json.loads(out)["status"] == "revoked"
    assert auth.authenticate(created.api_key) is None
    assert Api().post("/v2/segments/create", key=created.api_key, body={"name": "x"}).status == 401
    code, out, _ = run(capsys, "--json", "list-api-keys", "--org", "acme")
    assert json.loads(out)[0]["status"] == "revoked"


def test_unknown_key_id_and_bad_bucket_fail_cleanly(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "revoke-api-key", "key_missing")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, "create-api-key", "--org", "acme", "--bucket", "Not A Bucket")
    assert code == 2 and "bucket" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_console_script_honours_aws_endpoint_url() -> None:
    """The installed `segments-admin` talks to whatever AWS_ENDPOINT_URL names (here a moto server)."""
    script = Path(sys.executable).parent / "segments-admin"
    assert script.exists(), "segments-admin is installed by `pip install -e .` (make venv)"
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": endpoint}
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", **credentials)
        cfn.create_tables(client, template())
        apigateway = boto3.client("apigateway", endpoint_url=endpoint, region_name="us-east-1", **credentials)
        cfn.create_usage_plans(apigateway, template())
        done = subprocess.run(
            [str(script), "--json", "create-api-key", "--org", "remote", "--bucket", "remote"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        key_id = json.loads(done.stdout)["key_id"]
        item = client.get_item(TableName="SegmentsTable", Key={"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": "KEYID"}})
        assert dynamo.from_item(item["Item"])["org_id"] == "remote"
    finally:
        server.stop()


# ------------------------------------------------------------------ bucket claims


def _key_items_of(org_id: str) -> list[dict]:
    found = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="SegmentsTable")["Items"]
    return [i for i in map(dynamo.from_item, found) if i.get("org_id") == org_id and str(i["pk"]).startswith("KEY")]


def test_a_bucket_belongs_to_the_org_that_first_claimed_it(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "create-api-key", "--org", "demo-org", "--bucket", "demo")
    assert code == 0
    first = json.loads(out)
    code, out, err = run(capsys, "--json", "create-api-key", "--org", "other", "--bucket", "demo")
    assert code == 2 and out == ""
    assert "demo" in err and "belongs to another organisation" in err
    assert _key_items_of("other") == []
    code, out, _ = run(capsys, "--json", "list-api-keys", "--org", "other")
    assert code == 0 and json.loads(out) == []
    # the owner still mints keys for its bucket, and both of its keys work
    code, out, _ = run(capsys, "--json", "create-api-key", "--org", "demo-org", "--bucket", "demo")
    assert code == 0
    second = json.loads(out)
    assert len(_key_items_of("demo-org")) == 4  # by hash and by id, for each key
    for created in (first, second):
        principal = auth.authenticate(created["api_key"])
        assert principal == auth.Principal(created["key_id"], "demo-org", "demo", plans.ensure_gateway_key("demo-org"))
    # the refused org may still claim a bucket of its own
    assert run(capsys, "create-api-key", "--org", "other", "--bucket", "other")[0] == 0


# ------------------------------------------------------------------ system segments


def test_create_system_segment_makes_a_segment_the_api_cannot_change(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    key = make_org("acme", "acme").key
    code, out, err = run(
        capsys,
        "--json",
        "create-system-segment",
        "--org",
        "acme",
        "--bucket",
        "acme",
        "--name",
        "All members",
        "--description",
        "every member",
    )
    assert code == 0, err
    made = json.loads(out)
    assert made["system_segment"] is True and made["name"] == "All members"
    api = Api()
    segment = api.get(f"/v2/segments/{made['segment_id']}", key=key)
    assert segment.status == 200
    assert segment.json["system_segment"] is True and segment.json["description"] == "every member"
    assert api.patch(f"/v2/segments/{made['segment_id']}", key=key, body={"name": "Renamed"}).status == 403
    assert api.delete(f"/v2/segments/{made['segment_id']}", key=key).status == 403
    # its name is taken, on both surfaces
    assert api.post("/v2/segments/create", key=key, body={"name": "all members"}).status == 404
    assert (
        api.post("/segments/v2/acme/create", bearer=key, body={"name": "All Members", "resource_type": "person"}).status
        == 409
    )


def test_create_system_segment_text_output(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create-system-segment", "--org", "acme", "--bucket", "acme", "--name", "Staff")
    assert code == 0 and "segment_id:" in out and "Staff" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--org", "acme", "--bucket", "acme", "--name", "X\u200b"], ["name", "U+200B"]),
        (["--org", "acme", "--bucket", "acme", "--name", "   "], ["name"]),
        (["--org", "acme", "--bucket", "Not A Bucket", "--name", "n"], ["bucket"]),
        (["--org", "intruder", "--bucket", "acme", "--name", "n"], ["belongs to another organisation"]),
        (["--org", "acme", "--bucket", "acme", "--name", "Taken"], ["already exists"]),
    ],
)
def test_create_system_segment_fails_cleanly(
    aws: None, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    auth.create_api_key("acme", "acme")
    assert run(capsys, "create-system-segment", "--org", "acme", "--bucket", "acme", "--name", "Taken")[0] == 0
    code, out, err = run(capsys, "create-system-segment", *argv)
    assert code == 2 and out == ""
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    ("unset", "extra", "words"),
    [
        (["AWS_DEFAULT_REGION", "AWS_REGION"], {}, ["no AWS region: set AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL="]),
        (
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"],
            {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
            ["no AWS credentials: set AWS_ACCESS_KEY_ID"],
        ),
        (
            [],
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"},
            ["Could not connect", "is the local stack running"],
        ),
    ],
)
def test_a_missing_environment_is_one_line_not_a_traceback(
    unset: list[str], extra: dict[str, str], words: list[str]
) -> None:
    """As a new user runs it: the console script in a shell without the environment it needs."""
    script = Path(sys.executable).parent / "segments-admin"
    env = {k: v for k, v in {**os.environ, **ENV, **extra}.items() if k not in unset}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance metadata lookup for credentials
    done = subprocess.run(
        [str(script), "list-api-keys", "--org", "demo-org"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("segments-admin: ") and done.stderr.count("\n") == 1, done.stderr
    for word in words:
        assert word in done.stderr
