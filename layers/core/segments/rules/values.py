"""The typed values rules compare (pure): numbers, ISO dates and datetimes, lists, `near` triples.

Shared by the grammar (which refuses a rule value these cannot read) and the evaluator (which reads
record values with them), so a value the grammar accepts is read the same way at evaluation time.
docs/decisions.md ("Rules") says why each choice was made.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_NUMBER = r"\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*"
_NEAR = re.compile(f"{_NUMBER},{_NUMBER},{_NUMBER}")

Number = int | Decimal
When = dt.date | dt.datetime


def number(value: Any) -> Number | None:
    """A finite number as an exact int or Decimal (a float by its shortest repr, as DynamoDB would
    store it), or None: booleans, strings (even numeric ones) and NaN/Infinity are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def when(value: Any) -> When | None:
    """An ISO date (`YYYY-MM-DD`) as a date, or an ISO datetime (`YYYY-MM-DDTHH:MM[:SS[.ffffff]]`,
    with `Z`, an offset, or no zone meaning UTC) as an aware UTC datetime; anything else None."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10 and _DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
        if _DATETIME.fullmatch(value):
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return None


def as_date(value: When) -> dt.date:
    """A datetime's UTC calendar day; a date as is."""
    return value.date() if isinstance(value, dt.datetime) else value


def as_datetime(value: When) -> dt.datetime:
    """A date as midnight UTC; a datetime as is (already UTC)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def is_scalar(value: Any) -> bool:
    """A string, a boolean or a finite number: what equality compares."""
    return isinstance(value, str | bool) or number(value) is not None


def listed(value: Any) -> list[Any] | None:
    """The values of an `or_list`/`and_list`/`none_of` rule: a list of scalars as is, or a
    comma-separated string split on commas, each item trimmed, empty items dropped; None when that
    leaves nothing or an item is not a scalar."""
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    if not items or not all(is_scalar(item) for item in items):
        return None
    return items


def near(value: Any) -> tuple[float, float, float] | None:
    """`"lat,lon,km"` as floats, lat within [-90, 90], lon within [-180, 180], km > 0; else None."""
    if not isinstance(value, str):
        return None
    m = _NEAR.fullmatch(value)
    if not m:
        return None
    lat, lon, km = (float(part) for part in m.groups())
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < km < math.inf):
        return None
    return lat, lon, km


def coordinate(value: Any, bound: int) -> float | None:
    """A record's latitude (bound 90) or longitude (bound 180) as a float, or None."""
    n = number(value)
    if n is None or not -bound <= n <= bound:
        return None
    return float(n)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
