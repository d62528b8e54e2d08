"""Person-record fields as Mailchimp merge fields, and the email a record is synced under.

`merge_fields(record, paths)` takes the list of field paths to send (dotted: `address.city`), so a
segment's fieldset can choose them; `DEFAULT_FIELDS` is what is sent without one. Each path maps
to a merge tag: the audience's default tags for the usual names (`first_name` -> FNAME), otherwise
the path's last part in capitals, letters and digits only, at most 10 characters (Mailchimp's limit
for a tag). A tag the audience lacks is Mailchimp's to refuse or ignore; nothing is created there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

DEFAULT_FIELDS: tuple[str, ...] = ("first_name", "last_name")
KNOWN_TAGS = {
    "first_name": "FNAME",
    "given_name": "FNAME",
    "last_name": "LNAME",
    "family_name": "LNAME",
    "surname": "LNAME",
    "phone": "PHONE",
    "address": "ADDRESS",
    "birthday": "BIRTHDAY",
    "company": "COMPANY",
}
EMAIL_FIELDS = ("email", "email_address")
TAG_MAX = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def merge_tag(path: str) -> str:
    named = [part for part in path.split(".") if not part.isdigit()]  # `lines.0`: the list's name
    last = named[-1] if named else path
    known = KNOWN_TAGS.get(last.lower())
    if known:
        return known
    return re.sub(r"[^A-Z0-9]", "", last.upper())[:TAG_MAX] or "FIELD"


def value_at(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (list positions by number), None when absent."""
    current: Any = record
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def merge_fields(record: Mapping[str, Any], paths: Sequence[str] = DEFAULT_FIELDS) -> dict[str, str]:
    """{TAG: text} of the record's scalar values at `paths` (absent or non-scalar ones left out;
    of two paths with one tag, the first that has a value)."""
    found: dict[str, str] = {}
    for path in paths:
        tag = merge_tag(path)
        text = _text(value_at(record, path))
        if text is not None and tag not in found:
            found[tag] = text
    return found


def email_of(record: Mapping[str, Any]) -> str | None:
    """The record's email address (the first of EMAIL_FIELDS that looks like one), trimmed."""
    for name in EMAIL_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and _EMAIL.match(value.strip()):
            return value.strip()
    return None
