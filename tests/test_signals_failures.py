"""Every message the ingest consumer fails leaves a line naming it: message id, receive count and
the error's kind, whatever the error (not only invalid events), and never the body."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.logs import captured_log_lines
from helpers.signals import (
    add,
    create_segment,
    failures,
    person_event,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
    sqs_batch,
    sqs_record,
)

from conftest import Api, Org
from segments.store import signals as signal_store

SECRET = "p-secretbodyvalue"
FAILED = "person event message failed; the queue will redeliver it (the DLQ after maxReceiveCount)"


def _failed_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("message") == FAILED]


def test_an_unexpected_error_is_logged_with_the_message_id_and_its_kind(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = create_segment(api, org.key, "Broken")
    add(api, org.key, sid, SECRET, "p-fine")

    def broken(pid: str) -> Any:
        if pid == SECRET:
            raise KeyError(f"something about {pid}")  # an error whose text carries a value
        return real(pid)

    real = signal_store.holders
    monkeypatch.setattr(signal_store, "holders", broken)
    records = [
        sqs_record(person_event("death", SECRET), message_id="msg-broken", receive_count=5),
        sqs_record(person_event("death", "p-fine"), message_id="msg-fine"),
    ]
    with captured_log_lines() as lines:
        assert failures(run("SignalsIngestFunction", sqs_batch(records))) == ["msg-broken"]
    [line] = _failed_lines(lines)
    assert (line["message_id"], line["error"], line["receive_count"]) == ("msg-broken", "KeyError", 5)
    assert line["level"] == "WARNING"
    assert SECRET not in str(lines)


def test_invalid_and_busy_messages_are_logged_alike(org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from segments import errors

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise errors.Retryable("injected throttling")

    monkeypatch.setattr(signal_store, "merge_profile", busy)
    records = [
        sqs_record("{not json " + SECRET, message_id="msg-invalid"),
        sqs_record(
            person_event("profile", "p-x", org_id=org.org_id, data={"attributes": {"a": 1}}), message_id="msg-busy"
        ),
    ]
    with captured_log_lines() as lines:
        assert sorted(failures(run("SignalsIngestFunction", sqs_batch(records)))) == ["msg-busy", "msg-invalid"]
    kinds = {line["message_id"]: line["error"] for line in _failed_lines(lines)}
    assert kinds == {"msg-invalid": "InvalidEvent", "msg-busy": "Retryable"}
    assert SECRET not in str(lines)
