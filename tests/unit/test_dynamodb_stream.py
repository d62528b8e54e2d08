"""The stream adapter (segments/adapters/dynamodb_stream.py): Lambda's DynamoDB stream batch in,
typed changes to the use case in sequence order, the partial-batch response out (the first failure
reported, nothing after it applied)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from segments.adapters import dynamodb_stream
from segments.adapters.dynamodb_stream import StreamChange


def record(
    seq: str,
    *,
    name: str = "INSERT",
    pk: str = "ORG#o1#PERSON",
    sk: str = "PID#p-1",
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    images: dict[str, Any] = {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "SequenceNumber": seq}
    if new is not None:
        images["NewImage"] = new
    if old is not None:
        images["OldImage"] = old
    out: dict[str, Any] = {"eventName": name, "eventSource": "aws:dynamodb", "dynamodb": images}
    if event_id is not None:
        out["eventID"] = event_id
    return out


def seqs(changes: Sequence[StreamChange]) -> list[str]:
    return [c.sequence_number for c in changes]


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_a_change_is_typed_keys_images_name_and_ids() -> None:
    change = StreamChange(
        record(
            "42",
            name="MODIFY",
            new={"pk": {"S": "ORG#o1#PERSON"}, "n": {"N": "3"}, "tags": {"L": [{"S": "a"}]}},
            old={"n": {"N": "2.5"}},
            event_id="ev-1",
        )
    )
    assert change.event_name == "MODIFY" and not change.inserted
    assert change.keys == ("ORG#o1#PERSON", "PID#p-1")
    assert change.new == {"pk": "ORG#o1#PERSON", "n": 3, "tags": ["a"]}
    assert change.old == {"n": 2.5}
    assert change.has_old
    assert (change.sequence_number, change.change_id) == ("42", "ev-1")


def test_an_insert_has_no_old_image_and_its_change_id_falls_back_to_the_sequence_number() -> None:
    change = StreamChange(record("7", new={"a": {"S": "x"}}))
    assert change.inserted and not change.has_old
    assert change.old == {}
    assert change.change_id == "7"
    removed = StreamChange(record("8", name="REMOVE", old={"a": {"S": "x"}}))
    assert removed.new == {} and removed.old == {"a": "x"}


def test_keys_of_another_shape_are_none() -> None:
    raw = record("1")
    raw["dynamodb"]["Keys"] = {"id": {"S": "x"}}
    assert StreamChange(raw).keys is None


def test_changes_are_applied_in_sequence_order_whatever_the_delivery_order() -> None:
    seen: list[str] = []
    # "9" < "10" as numbers, not as strings
    batch = {"Records": [record("10"), record("9"), record("11100000000000000000002"), record("100")]}
    response = dynamodb_stream.in_order(batch, lambda c: seen.append(c.sequence_number), what="test")
    assert failures(response) == []
    assert seen == ["9", "10", "100", "11100000000000000000002"]


def test_a_batch_whose_numbers_are_not_all_decimal_keeps_its_delivery_order() -> None:
    seen: list[str] = []
    batch = {"Records": [record("b"), record("2"), record("a")]}
    dynamodb_stream.in_order(batch, lambda c: seen.append(c.sequence_number), what="test")
    assert seen == ["b", "2", "a"]


def test_the_first_failure_is_reported_and_nothing_after_it_is_applied() -> None:
    seen: list[str] = []

    def apply(change: StreamChange) -> None:
        if change.sequence_number in ("3", "4"):
            raise RuntimeError("boom")
        seen.append(change.sequence_number)

    batch = {"Records": [record("5"), record("4"), record("1"), record("3"), record("2")]}
    response = dynamodb_stream.in_order(batch, apply, what="test")
    assert response == {"batchItemFailures": [{"itemIdentifier": "3"}]}
    assert seen == ["1", "2"]  # 4 and 5 wait for the retry, which resumes from 3


def test_a_record_whose_image_is_not_dynamodb_json_fails_there() -> None:
    seen: list[str] = []
    bad = record("2", new={"x": {"Q": "1"}})  # no such type descriptor

    def apply(change: StreamChange) -> None:
        change.new  # noqa: B018 - reading the image is what fails
        seen.append(change.sequence_number)

    batch = {"Records": [record("1", new={"a": {"S": "x"}}), bad, record("3", new={"a": {"S": "y"}})]}
    assert failures(dynamodb_stream.in_order(batch, apply, what="test")) == ["2"]
    assert seen == ["1"]


def test_a_record_that_is_not_an_object_fails_the_whole_batch_with_an_empty_identifier() -> None:
    """No sequence number to resume from: Lambda takes an empty identifier as the whole batch failed."""
    seen: list[str] = []
    batch = {"Records": [record("1"), "junk", record("3")]}
    response = dynamodb_stream.in_order(batch, lambda c: seen.append(c.sequence_number), what="test")
    assert failures(response) == [""]
    assert seen == ["1"]


@pytest.mark.parametrize("event", [{"Records": []}, {}, {"Records": None}])
def test_an_empty_batch_applies_nothing_and_reports_nothing(event: dict[str, Any]) -> None:
    calls: list[Any] = []
    assert dynamodb_stream.in_order(event, calls.append, what="test") == {"batchItemFailures": []}
    assert calls == []
    assert dynamodb_stream.as_batch(event, lambda cs: calls.append(list(cs)), what="test") == {"batchItemFailures": []}
    assert calls == [[]]


def test_a_whole_batch_consumer_gets_the_changes_in_order_and_names_the_first_not_done() -> None:
    handed: list[list[str]] = []

    def apply(changes: Sequence[StreamChange]) -> int | None:
        handed.append(seqs(changes))
        return 1

    batch = {"Records": [record("30"), record("10"), record("20")]}
    assert failures(dynamodb_stream.as_batch(batch, apply, what="test")) == ["20"]
    assert handed == [["10", "20", "30"]]
    assert failures(dynamodb_stream.as_batch(batch, lambda changes: None, what="test")) == []


def test_a_whole_batch_consumer_gets_the_changes_before_a_record_that_cannot_be_parsed() -> None:
    handed: list[list[str]] = []

    def apply(changes: Sequence[StreamChange]) -> int | None:
        handed.append(seqs(changes))
        return None

    batch = {"Records": [record("1"), {"dynamodb": {"Keys": "junk", "SequenceNumber": "2"}}, record("3")]}
    assert failures(dynamodb_stream.as_batch(batch, apply, what="test")) == ["2"]
    assert handed == [["1"]]
    # a failure the consumer names comes first: it precedes the record not parsed
    assert failures(dynamodb_stream.as_batch(batch, lambda changes: 0, what="test")) == ["1"]


CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "segments"


def imported(path: Path) -> set[str]:
    """The `segments.*` modules a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segments"):
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("segments"))
    return names


def test_events_import_no_use_case_and_the_adapter_nothing_above_the_store() -> None:
    for path in sorted((CORE / "events").glob("*.py")):
        assert not [n for n in imported(path) if n.startswith("segments.usecases")], path.name
    above = ("segments.usecases", "segments.surfaces", "segments.events")
    assert not [n for n in imported(CORE / "adapters" / "dynamodb_stream.py") if n.startswith(above)]


def test_no_use_case_reads_lambdas_stream_batch_format() -> None:
    """Only the adapter spells the batch format: the records list, the raw keys and images, the response."""
    for path in sorted((CORE / "usecases").glob("*.py")):
        text = path.read_text()
        for spelling in ('"Records"', '"batchItemFailures"', '"Keys"', '"NewImage"', '"OldImage"', '"SequenceNumber"'):
            assert spelling not in text, f"{path.name} spells {spelling}"
