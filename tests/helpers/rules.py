"""Test support for rule segments: the `rig` fixture drives the table's stream through
RuleMembershipFunction, the rebuild queue through RebuildFunction (real-shaped SQS records), and
counts rule evaluations."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from conftest import Api, Org
from helpers.signals import REGION, Signals, failures, run, sqs_batch, sqs_record

# ------------------------------------------------------------------ counting evaluations


@dataclass
class Evaluations:
    """How many times compiled rules were applied to a record."""

    count: int = 0


def install_evaluator(monkeypatch: pytest.MonkeyPatch) -> Evaluations:
    """The core's evaluator, counting each evaluation of a record."""
    from segments import rules
    from segments.usecases import rule_definitions

    counted = Evaluations()
    compile_rules = rules.compile_rules

    def counting_compile(parsed: Any) -> Callable[[Mapping[str, Any]], bool]:
        predicate = compile_rules(parsed)

        def evaluate(record: Mapping[str, Any]) -> bool:
            counted.count += 1
            return bool(predicate(record))

        return evaluate

    monkeypatch.setattr(rules, "compile_rules", counting_compile)
    rule_definitions.clear_cache()
    return counted


# ------------------------------------------------------------------ the rig


@dataclass
class Rig:
    signals: Signals
    queue_url: str
    evaluations: Evaluations
    records: list[dict[str, Any]] = field(default_factory=list)  # every stream record read so far
    published_upto: int = 0

    def stream(self) -> list[dict[str, Any]]:
        new = self.signals.stream_batch()
        self.records.extend(new)
        return new

    def rule_function(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return run("RuleMembershipFunction", {"Records": records})

    def messages(self) -> list[dict[str, Any]]:
        """Take every message waiting on the rebuild queue (as SQS records, bodies parsed)."""
        sqs = boto3.client("sqs", region_name=REGION)
        found = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not got:
                return found
            for m in got:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def rebuild_chunk(self, body: dict[str, Any], *, receive_count: int = 1) -> list[str]:
        """RebuildFunction on one message; the failed message ids."""
        return failures(run("RebuildFunction", sqs_batch([sqs_record(body, receive_count=receive_count)])))

    def settle(self, *, rounds: int = 25) -> int:
        """Run the stream consumer and the rebuild chains until nothing is left; chunks run.

        `rounds` bounds the work: each round runs every waiting chunk, so a chain needs one round per
        chunk (the tests' rebuilds take a few; a chain that never ends fails in seconds)."""
        chunks = 0
        for _ in range(rounds):
            records = self.stream()
            if records:
                assert failures(self.rule_function(records)) == []
            bodies = self.messages()
            for body in bodies:
                failed = self.rebuild_chunk(body)
                if failed:
                    from segments.usecases import rebuild

                    rebuild.process(body)
                assert failed == []
                chunks += 1
            if not records and not bodies:
                return chunks
        raise AssertionError("the stream and the rebuild queue did not settle")

    def publish(self) -> list[dict[str, Any]]:
        """Run the publisher on the stream records not yet published; the events it put."""
        self.stream()
        batch = self.records[self.published_upto :]
        self.published_upto = len(self.records)
        assert failures(run("PublisherFunction", {"Records": batch})) == []
        return self.signals.bus.published()


@pytest.fixture(name="rig")
def rig_fixture(signals: Signals, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The rule engine's rig (import it as `rig_fixture` beside `signals_fixture`)."""
    from segments import queues

    url = signals.bus.queues["RebuildQueue"]
    monkeypatch.setenv("REBUILD_QUEUE_URL", url)
    queues.reset()
    yield Rig(signals=signals, queue_url=url, evaluations=install_evaluator(monkeypatch))
    queues.reset()


# ------------------------------------------------------------------ API helpers


def sheep_segment(
    api: Api,
    org: Org,
    name: str,
    *,
    segment_type: str = "dynamic",
    rules: list[dict[str, Any]] | None = None,
    include: list[str] = (),  # type: ignore[assignment]
    exclude: list[str] = (),
) -> str:  # type: ignore[assignment]
    """Create a segment through the SheepCRM surface; its segment id."""
    body = {
        "name": name,
        "resource_type": "person",
        "segment_type": segment_type,
        "rules": rules or [],
        "uris_include": [f"/{org.bucket}/person/{p}/" for p in include],
        "uris_exclude": [f"/{org.bucket}/person/{p}/" for p in exclude],
    }
    resp = api.post(f"/segments/v2/{org.bucket}/create", bearer=org.key, body=body)
    assert resp.status == 201, resp.text
    uid = resp.json["uid"]
    return f"{uid[0:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"


def members_of(api: Api, org: Org, segment_id: str) -> list[str]:
    resp = api.get("/v2/segments/members", key=org.key, query={"segment_id": segment_id})
    assert resp.status == 200, resp.text
    return [i["minerva_pid"] for i in resp.json["results"]["items"]]


def segment(api: Api, org: Org, segment_id: str) -> dict[str, Any]:
    resp = api.get(f"/v2/segments/{segment_id}", key=org.key)
    assert resp.status == 200, resp.text
    return dict(resp.json)


def redefine(org: Org, segment_id: str, field: str, value: str) -> None:
    """Store definition version 2 of a segment, the one rule `field` equals `value`, straight into
    the table as the SheepCRM update stores a changed definition (build_state building)."""
    from segments.store import keys

    client = boto3.client("dynamodb", region_name=REGION)
    client.update_item(
        TableName="SegmentsTable",
        Key=keys.segment_key(org.org_id, segment_id),
        UpdateExpression="SET #r = :r, definition_version = :v, build_state = :b",
        ExpressionAttributeNames={"#r": "rules"},
        ExpressionAttributeValues={
            ":r": {"L": [{"M": {"field": {"S": field}, "operator": {"S": "equals"}, "value": {"S": value}}}]},
            ":v": {"N": "2"},
            ":b": {"S": "building"},
        },
    )


def profile(
    pid: str,
    org: Org,
    attributes: dict[str, Any],
    *,
    observed_at: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    from helpers.signals import person_event

    return person_event(
        "profile", pid, org_id=org.org_id, observed_at=observed_at, event_id=event_id, data={"attributes": attributes}
    )
