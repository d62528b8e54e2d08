"""EventBridge plumbing: the client (segments.aws), PutEvents in batches of 10 with the failed
entries retried, jittered, and what still failed reported back by position."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from segments import aws
from segments.aws import backoff  # put() waits through it (tests patch it here)
from segments.config import get_settings

PUT_EVENTS_MAX = 10  # entries per PutEvents call
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Entry:
    """One event: `detail` is a JSON-serialisable dict."""

    source: str
    detail_type: str
    detail: dict[str, Any]

    def request(self, bus_name: str) -> dict[str, Any]:
        return {
            "Source": self.source,
            "DetailType": self.detail_type,
            "EventBusName": bus_name,
            "Detail": json.dumps(self.detail, separators=(",", ":"), ensure_ascii=False),
        }


def client() -> Any:
    """The EventBridge client (segments.aws: created once per container, honours AWS_ENDPOINT_URL)."""
    return aws.events()


def bus_name() -> str:
    return get_settings().event_bus_name or "default"


def put(entries: Sequence[Entry]) -> list[int]:
    """Put entries, 10 a call, in order; entries that fail (FailedEntryCount, throttling) are sent
    again with backoff, up to MAX_ATTEMPTS rounds. Returns the positions that still failed,
    ascending; once a batch keeps failing, later batches are not sent (their positions are
    returned too) so that the caller can stop at the first failure, in order."""
    name = bus_name()
    requests = [e.request(name) for e in entries]
    for start in range(0, len(requests), PUT_EVENTS_MAX):
        pending = list(range(start, min(start + PUT_EVENTS_MAX, len(requests))))
        for attempt in range(MAX_ATTEMPTS):
            try:
                result = client().put_events(Entries=[requests[i] for i in pending])
            except (ClientError, BotoCoreError):  # throttled or unreachable: the whole call again
                result = None
            if result is not None:
                outcomes = result.get("Entries") or []
                pending = [i for i, out in zip(pending, outcomes, strict=False) if out.get("ErrorCode")] + pending[
                    len(outcomes) :
                ]
            if not pending:
                break
            if attempt < MAX_ATTEMPTS - 1:
                backoff(attempt + 1)
        if pending:
            return sorted(pending) + list(range(start + PUT_EVENTS_MAX, len(requests)))
    return []
