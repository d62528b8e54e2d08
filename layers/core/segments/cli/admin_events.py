"""`segments-admin publish-event`: person events (docs/api.md#person-events) onto the bus or straight onto the queue.

Input is one JSON object (it may span lines) or JSON lines (one object a line, blank lines
skipped). Everything is read and checked first; if any line is not a JSON object carrying the
event's `event_id`, `type` and `minerva_pid`, is larger than EventBridge and SQS accept, or is
refused by the consumer's own parser (`person_events.parse`: the type, `observed_at`, the data of
its type), the command names the line and the reason and sends nothing. Then the events go out in batches of at most 10:
PutEvents on the bus (`source` segments.people, `detail-type` Person Event, the event as
`detail`), or SendMessageBatch on the queue (the bare event as the body). Entries a batch reports
failed are retried with backoff; what still fails is reported with its line number.

The consumer is idempotent on `event_id` (docs/api.md#person-events), so re-running a file after a partial
failure is safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from segments import aws
from segments.events import person_events

SOURCE = "segments.people"
DETAIL_TYPE = "Person Event"
MAX_BATCH = 10  # PutEvents and SendMessageBatch entries
MAX_ENTRY_BYTES = 256 * 1024  # EventBridge entry and SQS message limits
MAX_ATTEMPTS = 5
REQUIRED = ("event_id", "type", "minerva_pid")
_TRANSIENT_PUT_EVENTS_ERRORS = ("ThrottlingException", "InternalFailure", "InternalException")


class EventInputError(ValueError):
    """The input cannot be published as it is (nothing was sent)."""


@dataclass(frozen=True)
class Event:
    line: int  # 1-based line of the input where the event starts
    body: dict[str, Any]
    parsed: person_events.PersonEvent | None = field(default=None, compare=False)  # as the consumer reads it

    @property
    def text(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Outcome:
    put: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, code, message)


def parse(text: str) -> list[Event]:
    """Every event of the input, checked; raises EventInputError naming the first bad line."""
    stripped = text.strip()
    if not stripped:
        raise EventInputError("no events in the input")
    try:
        whole = json.loads(stripped)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        first_line = text[: text.index("{")].count("\n") + 1
        return [_checked(first_line, whole)]
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventInputError(f"line {number}: not JSON ({exc.msg} at column {exc.colno})") from None
        events.append(_checked(number, value))
    return events


def _checked(line: int, value: Any) -> Event:
    if not isinstance(value, dict):
        raise EventInputError(f"line {line}: a person event is a JSON object, not {type(value).__name__}")
    missing = [name for name in REQUIRED if not isinstance(value.get(name), str) or not value[name]]
    if missing:
        raise EventInputError(f"line {line}: missing {', '.join(missing)} (docs/api.md#person-events)")
    if len(Event(line, value).text.encode()) > MAX_ENTRY_BYTES - 1024:  # room for the EventBridge envelope
        raise EventInputError(f"line {line}: event {value['event_id']} is larger than 255 KB")
    try:  # the consumer's own parser: what it would refuse is refused here, for the same reason
        parsed = person_events.parse(value)
    except person_events.InvalidEvent as exc:
        raise EventInputError(f"line {line}: {exc.reason}; the consumer would refuse it") from None
    return Event(line, value, parsed)


def _send(
    events: Sequence[Event],
    call: Callable[[list[Event]], list[tuple[int, str, str] | None]],
    sleep: Callable[[float], None] | None,
    retryable: Callable[[str], bool],
) -> Outcome:
    """Batches of ≤ 10; `call` returns, per entry, None (done) or (index, code, message)."""
    outcome = Outcome()
    for start in range(0, len(events), MAX_BATCH):
        pending = list(events[start : start + MAX_BATCH])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            results = call(pending)
            failures = [(event, result) for event, result in zip(pending, results, strict=True) if result]
            outcome.put += len(pending) - len(failures)
            retry = [event for event, (_, code, _) in failures if retryable(code)]
            for event, (_, code, message) in failures:
                if not retryable(code) or attempt == MAX_ATTEMPTS:
                    outcome.failed.append((event.line, code, message))
            if not retry or attempt == MAX_ATTEMPTS:
                break
            pending = retry
            aws.backoff(attempt - 1, base=0.2, cap=5.0, jitter=False, sleep=sleep)  # one client: no jitter
    return outcome


def publish_to_bus(
    events: Sequence[Event], bus: str, client: Any, sleep: Callable[[float], None] | None = None
) -> Outcome:
    def call(batch: list[Event]) -> list[tuple[int, str, str] | None]:
        entries = [
            {"EventBusName": bus, "Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": event.text} for event in batch
        ]
        response = client.put_events(Entries=entries)
        return [
            (i, entry["ErrorCode"], entry.get("ErrorMessage", "")) if entry.get("ErrorCode") else None
            for i, entry in enumerate(response["Entries"])
        ]

    # Throttling and internal failures pass with time; a malformed entry or a missing bus do not.
    return _send(events, call, sleep, lambda code: code in _TRANSIENT_PUT_EVENTS_ERRORS)


def send_to_queue(
    events: Sequence[Event], queue_url: str, client: Any, sleep: Callable[[float], None] | None = None
) -> Outcome:
    sender_faults: set[str] = set()

    def call(batch: list[Event]) -> list[tuple[int, str, str] | None]:
        response = client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": event.text} for i, event in enumerate(batch)],
        )
        results: list[tuple[int, str, str] | None] = [None] * len(batch)
        for failure in response.get("Failed") or []:
            code = failure.get("Code", "Failed")
            if failure.get("SenderFault"):
                sender_faults.add(code)
            results[int(failure["Id"])] = (int(failure["Id"]), code, failure.get("Message", ""))
        return results

    return _send(events, call, sleep, lambda code: code not in sender_faults)


def describe_failures(outcome: Outcome) -> str:
    return "; ".join(f"line {line}: {code} {message}".strip() for line, code, message in outcome.failed)


# ------------------------------------------------------------------ --check: profiles older than the registry's

OLDER_HINT = "a profile event older than the person's stored profile is ignored by the consumer; --check counts them"


@dataclass(frozen=True)
class Older:
    """A profile event the consumer will ignore: the org's record holds a newer profile."""

    line: int
    minerva_pid: str
    observed_at: str
    stored_observed_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "minerva_pid": self.minerva_pid,
            "observed_at": self.observed_at,
            "stored_observed_at": self.stored_observed_at,
        }


def older_profiles(profiles: Sequence[tuple[int, person_events.PersonEvent]]) -> list[Older]:
    """The profile events (line, parsed event) that are older than the profile their org's record
    holds now: the consumer keeps the newer one (store.signals.merge_profile) and ignores them.
    Reads the registry (TABLE_NAME) as it is: events still on their way are not seen."""
    from segments.store import people

    by_org: dict[str, list[tuple[int, person_events.PersonEvent]]] = {}
    for line, event in profiles:
        if event.type == "profile" and event.org_id:
            by_org.setdefault(event.org_id, []).append((line, event))
    older = []
    for org_id, events in by_org.items():
        stored = people.profile_times(org_id, [event.minerva_pid for _, event in events])
        for line, event in events:
            at = stored.get(event.minerva_pid)
            if at is not None and at > event.observed_at:
                older.append(Older(line, event.minerva_pid, event.observed_at, at))
    return sorted(older, key=lambda o: o.line)


def describe_older(older: Sequence[Older], limit: int = 20) -> list[str]:
    """Text lines for the report of --check."""
    lines = [
        f"{len(older)} profile event(s) older than the stored profile: the consumer will ignore them"
        if older
        else "no profile event is older than the stored profile"
    ]
    lines += [
        f"  line {o.line}: {o.minerva_pid} observed {o.observed_at}, stored profile of {o.stored_observed_at}"
        for o in older[:limit]
    ]
    if len(older) > limit:
        lines.append(f"  ... and {len(older) - limit:,} more")
    return lines
