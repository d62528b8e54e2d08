"""Time and id formats of the two surfaces."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Storage form and Minerva form: YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sheep_time(stored: str) -> str:
    """SheepCRM form: YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC, no zone)."""
    return stored[:-1] if stored.endswith("Z") else stored


def request_id_from(aws_request_id: str | None) -> str:
    """`req_` + 32 lowercase hex, derived from API Gateway's request id so both correlate."""
    candidate = (aws_request_id or "").replace("-", "").lower()
    if not _HEX32.fullmatch(candidate):
        candidate = uuid.uuid4().hex
    return f"req_{candidate}"
