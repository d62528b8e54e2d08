"""segments-admin publish-event: person events onto the bus (as EventBridge delivers them to the
queue) or straight onto the queue; checked before anything is sent; batches of 10; retries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conftest import REGION
from segments.cli import admin, admin_events
from tools.moto_events import make_event_envelopes_faithful


def person_event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{n}",
        "type": "death",
        "minerva_pid": f"p-{n:012x}",
        "observed_at": "2024-01-15T10:30:45.123456Z",
        "org_id": None,
        "data": {"obituary_id": f"obit-{n}", "date_of_death": "2023-12-15"},
        **extra,
    }


@pytest.fixture
def bus(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A bus whose rule (the template's pattern) targets a queue; EVENT_BUS_NAME names the bus."""
    make_event_envelopes_faithful()
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        queue = sqs.create_queue(QueueName="PersonEventsQueue")["QueueUrl"]
        events.create_event_bus(Name="segments-bus")
        events.put_rule(
            Name="PersonEventsRule",
            EventBusName="segments-bus",
            EventPattern=json.dumps({"source": ["segments.people"], "detail-type": ["Person Event"]}),
        )
        events.put_targets(
            Rule="PersonEventsRule",
            EventBusName="segments-bus",
            Targets=[{"Id": "queue", "Arn": f"arn:aws:sqs:{REGION}:123456789012:PersonEventsQueue"}],
        )
        monkeypatch.setenv("EVENT_BUS_NAME", "segments-bus")
        yield {"bus": "segments-bus", "queue": queue}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = admin.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def messages(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        found.extend(json.loads(m["Body"]) for m in batch)
    return found


def test_json_lines_reach_the_queue_through_the_bus(
    bus: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = [person_event(n) for n in range(23)]
    lines = [json.dumps(e) for e in sent]
    lines.insert(5, "")  # blank lines are skipped
    lines.insert(12, "   ")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    code, out, err = run(capsys, "--json", "publish-event", str(path))
    assert (code, err) == (0, "")
    assert json.loads(out) == {"put": 23, "failed": 0, "bus": "segments-bus"}
    delivered = messages(bus["queue"])
    assert (
        sorted((m["source"], m["detail-type"], m["account"]) for m in delivered)
        == [("segments.people", "Person Event", "123456789012")] * 23
    )
    assert sorted((m["detail"] for m in delivered), key=lambda d: int(d["event_id"][4:])) == sent


def test_one_pretty_printed_object_from_stdin(
    bus: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event = person_event(1, type="profile", org_id="acme", data={"attributes": {"city": "Zürich 🏔"}})
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(event, indent=2, ensure_ascii=False)))
    code, out, _ = run(capsys, "publish-event", "-")
    assert code == 0 and out.splitlines()[0] == "put 1 event(s) on bus segments-bus"
    assert "--check counts them" in out.splitlines()[1]  # a profile: how to know whether it will apply
    [delivered] = messages(bus["queue"])
    assert delivered["detail"] == event


def test_a_bad_line_is_named_and_nothing_is_sent(
    bus: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(person_event(1)), "", '{"event_id": "evt-2", oops}', json.dumps(person_event(3))]
    path.write_text("\n".join(lines))
    code, out, err = run(capsys, "publish-event", str(path))
    assert code == 2 and out == ""
    assert "line 3: not JSON" in err
    assert messages(bus["queue"]) == []

    path.write_text(json.dumps(person_event(1)) + "\n" + json.dumps({"event_id": "evt-2", "type": "death"}) + "\n")
    code, _, err = run(capsys, "publish-event", str(path))
    assert code == 2 and "line 2: missing minerva_pid" in err
    path.write_text("[1, 2]\n")
    code, _, err = run(capsys, "publish-event", str(path))
    assert code == 2 and "line 1: a person event is a JSON object, not list" in err
    path.write_text("\n\n")
    assert run(capsys, "publish-event", str(path))[0] == 2
    assert messages(bus["queue"]) == []


def test_missing_bus_file_or_unknown_bus_fail_cleanly(
    bus: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(person_event(1)))
    code, _, err = run(capsys, "publish-event", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in err
    monkeypatch.delenv("EVENT_BUS_NAME")
    code, _, err = run(capsys, "publish-event", str(path))
    assert code == 2 and "EVENT_BUS_NAME" in err
    code, out, err = run(capsys, "--json", "publish-event", str(path), "--bus", "segments-bus")
    assert code == 0 and json.loads(out)["put"] == 1


def test_queue_option_sends_bare_events_in_batches(
    bus: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = [person_event(n) for n in range(12)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in sent))
    code, out, _ = run(capsys, "--json", "publish-event", str(path), "--queue", bus["queue"])
    assert code == 0
    assert json.loads(out) == {"put": 12, "failed": 0, "queue": bus["queue"]}
    assert sorted(messages(bus["queue"]), key=lambda d: int(d["event_id"][4:])) == sent


class FlakyEvents:
    """PutEvents that throttles some entries on the first call, and rejects one entry for good."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # boto3's parameter name
        assert len(Entries) <= 10
        ids = [json.loads(e["Detail"])["event_id"] for e in Entries]
        first_call = not self.batches
        self.batches.append(ids)
        results = []
        for event_id in ids:
            if event_id == "evt-7":
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "no"})
            elif first_call and event_id in ("evt-1", "evt-3"):
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": "x"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_failed_entries_are_retried_and_permanent_ones_reported() -> None:
    events = [admin_events.Event(n + 1, person_event(n)) for n in range(12)]
    client, sleeps = FlakyEvents(), []
    outcome = admin_events.publish_to_bus(events, "bus", client, sleep=sleeps.append)
    assert client.batches[0] == [f"evt-{n}" for n in range(10)]
    assert client.batches[1] == ["evt-1", "evt-3"]  # only the throttled ones, after a pause
    assert client.batches[2] == ["evt-10", "evt-11"]
    assert sleeps == [0.2]
    assert outcome.put == 11
    assert outcome.failed == [(8, "MalformedDetail", "no")]  # evt-7 is on line 8, not retried
    assert admin_events.describe_failures(outcome) == "line 8: MalformedDetail no"


def test_honours_aws_endpoint_url(aws_env: None) -> None:
    """As a process of its own, against whatever AWS_ENDPOINT_URL names (a moto server here)."""
    import os
    import subprocess
    import sys

    from moto.server import ThreadedMotoServer

    from conftest import ENV, ROOT

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
        queue = sqs.create_queue(QueueName="PersonEventsQueue")["QueueUrl"]
        env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT / "layers/core")}
        done = subprocess.run(
            [sys.executable, "-m", "segments.cli.admin", "--json", "publish-event", "-", "--queue", queue],
            input=json.dumps(person_event(1)) + "\n" + json.dumps(person_event(2)) + "\n",
            env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["put"] == 2
        bodies = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        assert sorted(json.loads(m["Body"])["event_id"] for m in bodies) == ["evt-1", "evt-2"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("change", "reason"),
    [  # the reason names the field (the parser's wording is its own)
        ({"type": "birth"}, "type: "),
        ({"observed_at": None}, "observed_at: "),  # missing
        ({"observed_at": "2024-01-15T10:30:45"}, "observed_at: "),  # no zone
        ({"data": {"date_of_death": "2023-12-15"}}, "obituary_id"),  # a death needs its obituary_id
        ({"minerva_pid": "p-bad!"}, "minerva_pid: "),
        ({"type": "profile", "org_id": None, "data": {"attributes": {"a": 1}}}, "org_id"),
    ],
)
def test_events_the_consumer_would_refuse_are_refused_with_its_reason(
    bus: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], reason: str
) -> None:
    """The consumer's own parser decides (segments.events.person_events): nothing is put, exit 2."""
    bad = {k: v for k, v in {**person_event(2), **change}.items() if v is not None or k == "org_id"}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(person_event(1)) + "\n" + json.dumps(bad) + "\n")
    for target in ([], ["--queue", bus["queue"]]):
        code, out, err = run(capsys, "publish-event", str(path), *target)
        assert (code, out) == (2, "")
        assert err.startswith("segments-admin: line 2: invalid person event: ") and reason in err, err
        assert "the consumer would refuse it" in err
    assert messages(bus["queue"]) == []
