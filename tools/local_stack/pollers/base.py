"""What every poller shares: the thread loop, the AWS clients, the reading of batchItemFailures."""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

import boto3
from botocore.config import Config

from tools import cfn
from tools.local_stack.runtime import Runtime

log = logging.getLogger("local_stack")


def client(service: str, endpoint_url: str) -> Any:
    # DynamoDB Streams calls 404 against moto with account-id endpoints (docs/decisions.md)
    config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard", "max_attempts": 3})
    return boto3.client(service, endpoint_url=endpoint_url, region_name=cfn.REGION, config=config)


class Poller(threading.Thread):
    """Calls `poll()` until `stopping` is set; an error is logged and retried a second later."""

    def __init__(self, name: str, runtime: Runtime, stopping: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.runtime = runtime
        self.stopping = stopping

    def poll(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception:
                if not self.stopping.is_set():
                    log.error("poller %s:\n%s", self.name, traceback.format_exc())
                    self.stopping.wait(1)


def failed_identifiers(result: Any, valid: set[str]) -> set[str] | None:
    """The `batchItemFailures[].itemIdentifier` of a response; None when the response is invalid
    (Lambda then fails the whole batch). A missing or null list means no failures."""
    if not isinstance(result, dict):
        return set()
    items = result.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in valid:
            return None
        failed.add(identifier)
    return failed
