"""Waiting on what the event side does in the background (queues, streams, the local stack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240, every: float = 0.25) -> Any:
    """Poll until `check()` is truthy and return its value. A liveness deadline, generous so that
    a loaded machine does not fail it; nothing is asserted about speed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"gave up waiting for {what}"
            return result
        time.sleep(every)
