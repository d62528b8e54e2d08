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

from conftest import ENV, ROOT, Api, template
from segments import admin, auth
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
    assert set(created) == {"key_id", "api_key", "org_id", "bucket"}
    assert (created["org_id"], created["bucket"]) == ("acme", "acme")
    assert auth.authenticate(created["api_key"]) == auth.Principal(created["key_id"], "acme", "acme")
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
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        cfn.create_tables(client, template())
        done = subprocess.run([str(script), "--json", "create-api-key", "--org", "remote", "--bucket", "remote"],
                              env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        key_id = json.loads(done.stdout)["key_id"]
        item = client.get_item(TableName="SegmentsTable", Key={"pk": {"S": f"KEYID#{key_id}"}, "sk": {"S": "KEYID"}})
        assert dynamo.from_item(item["Item"])["org_id"] == "remote"
    finally:
        server.stop()
