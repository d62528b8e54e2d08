"""Time and id formats of the two surfaces."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
YEAR_MIN, YEAR_MAX = 1900, 9999  # of the instant in UTC, as stored


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Storage form and Minerva form: YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instant(value: str, *, bare_date: bool = False) -> str:
    """An ISO-8601 timestamp with a zone (Z or an offset) in storage form, or ValueError saying why.

    The year is checked on the instant in UTC, after the conversion, so an offset that carries a
    timestamp past 9999-12-31 (or before 1900) is refused, never an overflow. With `bare_date`, a
    date alone (YYYY-MM-DD) means its midnight UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 timestamp with a zone (Z or an offset)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO-8601 timestamp with a zone (Z or an offset)") from exc
    if parsed.tzinfo is None:
        if not (bare_date and len(value) == 10):
            raise ValueError("must be an ISO-8601 timestamp with a zone (Z or an offset)")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 9999 (or before year 1)
        raise ValueError(f"year out of range: {YEAR_MIN}-{YEAR_MAX} in UTC") from None
    if not YEAR_MIN <= utc.year <= YEAR_MAX:
        raise ValueError(f"year out of range: {YEAR_MIN}-{YEAR_MAX} in UTC")
    return iso(utc)


def sheep_time(stored: str) -> str:
    """SheepCRM form: YYYY-MM-DDTHH:MM:SS.mmmmmm (UTC, no zone)."""
    return stored[:-1] if stored.endswith("Z") else stored


def request_id_from(aws_request_id: str | None) -> str:
    """`req_` + 32 lowercase hex, derived from API Gateway's request id so both correlate."""
    candidate = (aws_request_id or "").replace("-", "").lower()
    if not _HEX32.fullmatch(candidate):
        candidate = uuid.uuid4().hex
    return f"req_{candidate}"
