"""Signals that arrive while a segment is deleted are held for it, and a restore feeds them: a
restored segment serves every current member's signals, each published once (docs/api.md#signals,
docs/api.md#segment-signal-detected)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.signals import (
    PID,
    add,
    create_segment,
    failures,
    feed,
    feed_pks,
    ingest,
    of_type,
    person_event,
    remove,
    run,
    signals_fixture,  # noqa: F401 - the `signals` fixture
)

from conftest import Api, Org
from segments.store import held
from segments.store import signals as signal_store

DEATHS = "/v2/segments/signals/deaths"


def detected(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((d["segment_id"], d["minerva_pid"]) for d in of_type(events, "Segment Signal Detected"))


def served(api: Api, org: Org, sid: str) -> list[str]:
    resp = api.get(DEATHS, key=org.key, query={"segment_id": sid})
    assert resp.status == 200, resp.text
    return sorted(r["minerva_pid"] for r in resp.json["results"])


def delete(api: Api, org: Org, sid: str) -> None:
    assert api.delete(f"/v2/segments/{sid}", key=org.key).status == 200


def restore(api: Api, org: Org, sid: str) -> None:
    resp = api.post(f"/segments/v2/{org.bucket}/segment/{sid.replace('-', '')}/restore", bearer=org.key)
    assert resp.status == 200, resp.text


def consumers(signals: Any) -> list[dict[str, Any]]:
    """The stream records since the last call, through SignalFeedFunction then PublisherFunction
    (the publisher is called again for what the feed function wrote); what was published."""
    batch = signals.stream_batch()
    assert failures(run("SignalFeedFunction", {"Records": batch})) == []
    assert failures(run("PublisherFunction", {"Records": batch + signals.stream_batch()})) == []
    published: list[dict[str, Any]] = signals.bus.published()
    return published


def _deleted_with_members(api: Api, org: Org, signals: Any, *pids: str) -> tuple[str, str]:
    gone, live = create_segment(api, org.key, "Deleted for a while"), create_segment(api, org.key, "Live")
    add(api, org.key, gone, *pids)
    add(api, org.key, live, *pids)
    delete(api, org, gone)
    consumers(signals)
    return gone, live


def test_a_death_while_deleted_is_served_and_published_after_the_restore(api: Api, org: Org, signals: Any) -> None:
    gone, live = _deleted_with_members(api, org, signals, PID, "p-quiet")
    assert failures(ingest(person_event("death", PID, event_id="evt-while-deleted"))) == []
    assert feed_pks(gone) == [] and len(feed_pks(live)) == 1
    assert detected(consumers(signals)) == [(live, PID)]  # nothing out for the deleted segment

    restore(api, org, gone)
    assert detected(consumers(signals)) == [(gone, PID)]
    assert served(api, org, gone) == [PID]
    assert held.held_entries(gone) == []
    # A stream retry of everything so far, or a redelivered event, publishes nothing again.
    assert failures(ingest(person_event("death", PID, event_id="evt-while-deleted"))) == []
    assert detected(consumers(signals)) == []


def test_a_release_retried_after_a_crash_publishes_once(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone, _ = _deleted_with_members(api, org, signals, PID, "p-two")
    assert failures(ingest(person_event("death", PID), person_event("death", "p-two"))) == []
    consumers(signals)
    restore(api, org, gone)
    batch = signals.stream_batch()
    real = held.release

    def crash(entries: Any) -> None:
        raise RuntimeError("injected: the function died after the feed entries were written")

    monkeypatch.setattr(held, "release", crash)
    assert len(failures(run("SignalFeedFunction", {"Records": batch}))) == 1
    monkeypatch.setattr(held, "release", real)
    assert failures(run("SignalFeedFunction", {"Records": batch})) == []  # Lambda's retry
    assert failures(run("PublisherFunction", {"Records": batch + signals.stream_batch()})) == []
    assert detected(signals.bus.published()) == [(gone, PID), (gone, "p-two")]
    assert served(api, org, gone) == [PID, "p-two"] and held.held_entries(gone) == []


def test_a_restore_between_the_state_read_and_the_hold_feeds_at_once(
    api: Api, org: Org, signals: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest read "deleted"; the segment was restored (and its held entries released) before
    the hold: the hold's condition fails and the entry goes to the feed directly."""
    gone, _ = _deleted_with_members(api, org, signals, PID)
    real = signal_store.segment_states

    def restored_meanwhile(pairs: Any) -> Any:
        states = real(pairs)
        restore(api, org, gone)
        feed(signals)
        return states

    monkeypatch.setattr(signal_store, "segment_states", restored_meanwhile)
    assert failures(ingest(person_event("death", PID))) == []
    monkeypatch.setattr(signal_store, "segment_states", real)
    assert held.held_entries(gone) == []
    assert served(api, org, gone) == [PID]
    assert failures(run("PublisherFunction", {"Records": signals.stream_batch()})) == []
    assert (gone, PID) in detected(signals.bus.published())


def test_a_member_removed_before_the_release_is_neither_fed_nor_published(api: Api, org: Org, signals: Any) -> None:
    gone, _ = _deleted_with_members(api, org, signals, PID, "p-stays")
    assert failures(ingest(person_event("death", PID), person_event("death", "p-stays"))) == []
    consumers(signals)
    restore(api, org, gone)
    remove(api, org.key, gone, PID)  # before the feed function saw the restore
    assert [p for s, p in detected(consumers(signals)) if s == gone] == ["p-stays"]
    assert served(api, org, gone) == ["p-stays"] and len(feed_pks(gone)) == 1


def test_deleted_again_before_the_release_keeps_them_held_for_the_next_restore(
    api: Api, org: Org, signals: Any
) -> None:
    gone, _ = _deleted_with_members(api, org, signals, PID)
    assert failures(ingest(person_event("death", PID))) == []
    consumers(signals)
    restore(api, org, gone)
    delete(api, org, gone)
    assert [s for s, _ in detected(consumers(signals))] == []
    assert len(held.held_entries(gone)) == 1
    restore(api, org, gone)
    assert detected(consumers(signals)) == [(gone, PID)]
    assert served(api, org, gone) == [PID]
