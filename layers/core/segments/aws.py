"""The AWS clients and the one retry backoff.

One client per service, created once per container under a lock (boto3's default session is not
safe to build clients from several threads at once) and honouring AWS_ENDPOINT_URL (the local
stack, moto). Every client shares botocore's standard retries and short timeouts; per service only
what differs is set here. `reset()` forgets the clients and the settings (tests switch endpoints
and environment), and whatever registered itself with `on_reset` (a cache built from them).

Under Lambda SnapStart (segments.snapstart) `prime` runs before the snapshot and `after_restore`
after each restore: see their docstrings and docs/decisions.md (Cold start).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from segments import snapstart
from segments.config import get_settings

RETRIES = {"mode": "standard", "max_attempts": 4}  # botocore's own retries, before ours
CONNECT_TIMEOUT = 2
SERVICE_CONFIG: dict[str, dict[str, Any]] = {
    # The parallel batch calls of one request share the pool (PARALLEL_CALLS in store/dynamo.py).
    "dynamodb": {"read_timeout": 5, "tcp_keepalive": True, "max_pool_connections": 32},
    "events": {"read_timeout": 5},
    "sqs": {"read_timeout": 10},
    # Exports: SigV4 presigned URLs (they may carry an expiry up to 7 days); parts of 5 MiB and more.
    "s3": {"read_timeout": 30, "signature_version": "s3v4"},
    "secretsmanager": {"read_timeout": 5},  # the orgs' Mailchimp credentials
    "apigateway": {"read_timeout": 10},  # segments-admin only: usage plans and the orgs' gateway keys
    "kms": {"read_timeout": 5},  # webhook signing secrets (segments/external/webhook_secrets.py)
}

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_resets: list[Callable[[], None]] = []


def client(service: str) -> Any:
    """The service's client, created once per container (a service of SERVICE_CONFIG)."""
    found = _clients.get(service)
    if found is not None:
        return found
    region = get_settings().region
    with _lock:
        found = _clients.get(service)
        if found is None:
            import boto3  # imported with the first client, not with this module
            from botocore.config import Config

            config = Config(retries=RETRIES, connect_timeout=CONNECT_TIMEOUT, **SERVICE_CONFIG[service])
            found = _clients[service] = boto3.client(service, region_name=region, config=config)
        return found


def dynamodb() -> Any:
    return client("dynamodb")


def events() -> Any:
    return client("events")


def sqs() -> Any:
    return client("sqs")


def s3() -> Any:
    return client("s3")


def secrets() -> Any:
    return client("secretsmanager")


def apigateway() -> Any:
    return client("apigateway")


def kms() -> Any:
    return client("kms")


def on_reset(forget: Callable[[], None]) -> None:
    """Call `forget` on every reset() (for caches built from the clients or the settings)."""
    _resets.append(forget)


def reset() -> None:
    """Forget the clients, the settings and the caches registered with on_reset."""
    with _lock:
        _clients.clear()
    get_settings.cache_clear()
    for forget in _resets:
        forget()


# ------------------------------------------------------------------ backoff


def delay(attempt: int, base: float = 0.05, cap: float = 2.0, jitter: bool = True) -> float:
    """Exponential: base * 2**attempt, at most `cap`; with full jitter, uniform in [0, that]."""
    ceiling = min(cap, base * (2**attempt))
    return random.uniform(0, ceiling) if jitter else ceiling  # nosec B311  # jitter, not a secret


def spread(seconds: float, fraction: float) -> float:
    """`seconds` give or take `fraction` of it, uniformly (jitter for a scheduled retry)."""
    return max(0.0, seconds * random.uniform(1 - fraction, 1 + fraction))  # nosec B311  # jitter, not a secret


def backoff(
    attempt: int,
    base: float = 0.05,
    cap: float = 2.0,
    *,
    jitter: bool = True,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Sleep before retry number `attempt` (exponential, full jitter unless told). Every loop that
    retries unprocessed items, failed entries or throttling waits through here; each bounds its
    attempts. `sleep` replaces time.sleep (a caller that lets its own caller choose)."""
    (sleep or time.sleep)(delay(attempt, base, cap, jitter))


# ------------------------------------------------------------------ SnapStart


def prime() -> None:
    """Before the snapshot: boto3 imported and a client of each service built, so the snapshot
    holds the loaded service models (cached by boto3's default session) and a restored environment
    only builds client objects. No request is made: no connection is open in the snapshot."""
    for service in SERVICE_CONFIG:
        client(service)


def after_restore() -> None:
    """After each restore: every environment resumed from one snapshot starts with the same
    `random` state, so they would all draw the same backoff jitter and retry in step: seed it
    again from os.urandom. And forget the clients (reset()): each environment builds its own,
    with its own connections and credentials, from the models already loaded."""
    reset()
    random.seed()


snapstart.register(before_snapshot=prime, after_restore=after_restore)
