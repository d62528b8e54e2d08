"""Ingest a person event (docs/api.md#person-events): store the signal once, fan it out to every segment holding the
person, in every org, and keep every org's person record current. Called by the queue consumer
(functions/signals_ingest) with a validated event; no boto3 and no SQS here.

A lifecycle event (death, job change, relocation), in order:
  (a) the fact and the person's marker, one transaction; the fact only if its event id is new.
      A duplicate is not an error: the stored fact (the first delivery's) is fanned out again,
      because a crash after (a) and before (c) must not lose the fan-out;
  (b) one Query of gsi3: every org's active memberships and person records of the PID;
  (c) a feed entry for each live segment holding it (BatchWriteItem, deterministic keys: a
      repeat rewrites the same items, which is not an INSERT and publishes nothing); for each
      deleted one, a held entry (store/held.py), fed and published when it is restored;
  (d) each org's person record gets the fact unless it holds a newer one (conditional update).
A profile event merges its attributes into one org's person record unless that holds a newer
profile; the record is created when missing (so PID_VALIDATION=registry accepts the PID).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from segments import errors
from segments.events.person_events import InvalidEvent, PersonEvent, parse_message
from segments.observability import MetricUnit, logger, metrics
from segments.store import held
from segments.store import signals as store


@dataclass(frozen=True)
class Ingested:
    """What one event did."""

    event_id: str
    duplicate: bool  # the fact was already stored
    segments: int  # feed entries written (live segments holding the person)
    records_updated: int  # person records that took the fact (or the profile)
    held: int = 0  # entries held for deleted segments holding the person (fed on their restore)
    ignored_as_older: int = 0  # a profile not applied: the record holds a newer one (0 or 1)


def ingest_message(body: str, *, message_id: str) -> Ingested:
    """Validate and ingest one queue message. An invalid message raises InvalidEvent (it will fail
    alike every time: the queue's redrive moves it to the dead-letter queue); a busy store raises
    Retryable. Either way only this message fails. The log names the message and the reason,
    never the body."""
    try:
        event = parse_message(body)
    except InvalidEvent as exc:
        metrics.add_metric(name="PersonEventsInvalid", unit=MetricUnit.Count, value=1)
        logger.warning("invalid person event", extra={"message_id": message_id, "reason": exc.reason})
        raise
    try:
        return ingest(event)
    except InvalidEvent as exc:
        metrics.add_metric(name="PersonEventsInvalid", unit=MetricUnit.Count, value=1)
        logger.warning(
            "invalid person event", extra={"message_id": message_id, "event_id": event.event_id, "reason": exc.reason}
        )
        raise
    except errors.Retryable:
        metrics.add_metric(name="PersonEventsRetried", unit=MetricUnit.Count, value=1)
        logger.warning(
            "store busy; the message will be retried", extra={"message_id": message_id, "event_id": event.event_id}
        )
        raise


def ingest(event: PersonEvent) -> Ingested:
    if event.type == "profile":
        return _profile(event)
    return _lifecycle(event)


def fact_of(event: PersonEvent) -> dict[str, Any]:
    """The stored fact of a lifecycle event."""
    return {
        "type": event.type,
        "minerva_pid": event.minerva_pid,
        "event_id": event.event_id,
        "observed_at": event.observed_at,
        "data": event.stored_data(),
    }


def feed_entries(fact: dict[str, Any], segments: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The feed entries of a fact in (org_id, segment_id) segments."""
    return [
        {
            "org_id": org_id,
            "segment_id": segment_id,
            "minerva_pid": fact["minerva_pid"],
            "type": fact["type"],
            "event_id": fact["event_id"],
            "first_observed_at": fact["observed_at"],
            "data": fact["data"],
        }
        for org_id, segment_id in segments
    ]


def lifecycle_sets(fact: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(fact name, attributes) a lifecycle fact sets on a person record (docs/api.md#people-registry)."""
    data = fact["data"]
    if fact["type"] == "death":
        return "death", {"deceased": True, "date_of_death": data.get("date_of_death")}
    if fact["type"] == "job_change":
        return "job", {"employer": data.get("new_employer"), "title": data.get("new_title")}
    return "location", {"location": data.get("new_location")}


def digest_of(fact: dict[str, Any]) -> str:
    """The content of a fact, as its event id's claim holds it: the same event delivered again
    has the same digest; another fact reusing the id has another."""
    content = {k: fact[k] for k in ("type", "minerva_pid", "observed_at", "data")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lifecycle(event: PersonEvent) -> Ingested:
    fact = fact_of(event)
    try:
        stored = store.put_fact(fact, digest=digest_of(fact))
    except store.EventIdTaken:
        metrics.add_metric(name="PersonEventIdCollisions", unit=MetricUnit.Count, value=1)
        raise InvalidEvent(
            "event_id: already stored for another fact (another person or other content); ids are unique per fact"
        ) from None
    if not stored:
        fact = store.get_fact(event.minerva_pid, event.event_id) or fact  # the first delivery wins
        metrics.add_metric(name="SignalDuplicates", unit=MetricUnit.Count, value=1)
    holders = store.holders(event.minerva_pid)
    states = store.segment_states(holders.memberships) if holders.memberships else {}
    live = sorted(pair for pair, state in states.items() if state == "active")
    store.put_feed(feed_entries(fact, live))
    # A deleted segment's members stay stored (it can be restored): their signals are held for
    # it, and become feed entries (served and published) when it is restored. A segment restored
    # between the read above and the hold takes the entry in its feed at once.
    held_for = sorted(pair for pair, state in states.items() if state == "deleted")
    reopened = [entry for entry in feed_entries(fact, held_for) if not held.hold(entry)]
    store.put_feed(reopened)
    live += [(str(e["org_id"]), str(e["segment_id"])) for e in reopened]
    name, sets = lifecycle_sets(fact)
    updated = sum(
        store.set_lifecycle_fact(
            org_id, event.minerva_pid, fact=name, sets=sets, observed_at=fact["observed_at"], event_id=fact["event_id"]
        )
        for org_id in sorted(set(holders.person_orgs))
    )
    if stored:
        metrics.add_metric(name="SignalsStored", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SignalFeedEntries", unit=MetricUnit.Count, value=len(live))
    logger.info(
        "person event ingested",
        extra={
            "event_id": event.event_id,
            "type": event.type,
            "duplicate": not stored,
            "segments": len(live),
            "held": len(held_for) - len(reopened),
            "records_updated": updated,
        },
    )
    return Ingested(
        event_id=event.event_id,
        duplicate=not stored,
        segments=len(live),
        records_updated=updated,
        held=len(held_for) - len(reopened),
    )


def _profile(event: PersonEvent) -> Ingested:
    assert event.org_id is not None  # the model requires it for profile events
    attributes = event.stored_data()["attributes"]
    merged = store.merge_profile(event.org_id, event.minerva_pid, attributes, observed_at=event.observed_at)
    if not merged:
        # Not an error (events arrive out of order), but a producer sending older data than the
        # registry holds should be able to see why nothing changed.
        metrics.add_metric(name="ProfilesIgnoredAsOlder", unit=MetricUnit.Count, value=1)
        logger.info(
            "profile ignored: the person record holds a newer profile",
            extra={
                "event_id": event.event_id,
                "observed_at": event.observed_at,
                "stored_observed_at": store.profile_observed_at(event.org_id, event.minerva_pid),
            },
        )
    logger.info(
        "person event ingested", extra={"event_id": event.event_id, "type": event.type, "records_updated": int(merged)}
    )
    return Ingested(
        event_id=event.event_id,
        duplicate=False,
        segments=0,
        records_updated=int(merged),
        ignored_as_older=int(not merged),
    )
