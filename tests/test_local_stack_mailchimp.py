"""The Mailchimp audience sync through the local stack: the outbox's membership events reach
MailchimpSyncQueue through the template's bus rule, the queue poller runs MailchimpSyncFunction,
whose delayed message (DelaySeconds) comes back through the same poller, and the stack's local
Mailchimp ends up holding exactly the members' emails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.http import call
from helpers.waiting import wait_for

from tools.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the running stack owns it here."""
    yield


def test_membership_changes_reach_the_local_mailchimp() -> None:
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0, org="demo-org", bucket="demo") as running:
        stack = running.info
        assert stack is not None and stack.demo_key and stack.mailchimp_url and running._mailchimp
        server = running._mailchimp
        from segments.cli.admin import main
        from segments.store import people

        assert main(["set-mailchimp", "--org", "demo-org", "--api-key", "local-us6", "--audience-id", "aud"]) == 0
        for i in range(4):
            people.put("demo-org", f"p-mc{i}", {"email": f"mc{i}@example.org", "first_name": f"N{i}"})

        minerva = {"x-api-key": stack.demo_key, "content-type": "application/json"}
        created = call(
            stack.api_url, "POST", "/v2/segments/create", {"name": "Newsletter", "mailchimp_sync": True}, minerva
        )
        assert created.status == 200, created.body
        sid = created.json["segment_id"]
        body = {"segment_id": sid, "minerva_pids": ["p-mc0", "p-mc1", "p-mc2"]}
        assert call(stack.api_url, "POST", "/v2/segments/members/add", body, minerva).status == 200
        want = {"mc0@example.org", "mc1@example.org", "mc2@example.org"}
        wait_for("the three members in Mailchimp", lambda: server.segment_members("aud", "Newsletter") == want)

        body = {"segment_id": sid, "minerva_pids": ["p-mc1"]}
        assert call(stack.api_url, "POST", "/v2/segments/members/remove", body, minerva).status == 200
        want -= {"mc1@example.org"}
        wait_for("p-mc1 out of the Mailchimp segment", lambda: server.segment_members("aud", "Newsletter") == want)
        assert server.segments_named("aud", "Newsletter") == 1
