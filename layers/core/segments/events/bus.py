"""EventBridge plumbing: the client (created once), PutEvents in batches of 10 with the failed
entries retried, jittered, and what still failed reported back by position."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from segments.config import get_settings

PUT_EVENTS_MAX = 10  # entries per PutEvents call
MAX_ATTEMPTS = 6
_client_lock = threading.Lock()


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
    """The EventBridge client, created once per container (honours AWS_ENDPOINT_URL)."""
    return _client()


@lru_cache(maxsize=1)
def _client() -> Any:
    with _client_lock:
        return boto3.client(
            "events",
            region_name=get_settings().region,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5),
        )


def bus_name() -> str:
    return os.environ.get("EVENT_BUS_NAME", "default")


def reset() -> None:
    """Forget the cached client (tests switch endpoints)."""
    _client.cache_clear()


def _backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> None:
    time.sleep(random.uniform(0, min(cap, base * (2**attempt))))


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
                _backoff(attempt + 1)
        if pending:
            return sorted(pending) + list(range(start + PUT_EVENTS_MAX, len(requests)))
    return []
