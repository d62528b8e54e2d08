"""Domain models. Storage shapes live in store/; wire shapes in surfaces/."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from segments.store import limits

NAME_MAX = 255
DESCRIPTION_MAX = 4096
PID_RE = re.compile(r"^p-[A-Za-z0-9]{1,64}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# Org ids sit inside storage keys ("ORG#{org}#PERSON", "MEMBER#{org}#{segment}"), where '#' separates
# parts: letters, digits, '.', '_', '-', starting with a letter or digit, 1-128 characters
# (docs/limits.md). Checked wherever an org id enters: keys minted, the authorizer, person events.
ORG_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ORG_ID_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
BUCKET_RULE = "2-63 lowercase letters, digits or '-', starting with a letter or digit"


def valid_org_id(org_id: object) -> bool:
    return isinstance(org_id, str) and ORG_ID_RE.fullmatch(org_id) is not None


def valid_bucket(bucket: object) -> bool:
    return isinstance(bucket, str) and BUCKET_RE.fullmatch(bucket) is not None


def check_org_and_bucket(org_id: str, bucket: str | None = None) -> None:
    """ValueError saying which of `org_id` (and `bucket`, when given) is malformed, and the rule."""
    if not valid_org_id(org_id):
        raise ValueError(f"org must be {ORG_ID_RULE}")
    if bucket is not None and not valid_bucket(bucket):
        raise ValueError(f"bucket must be {BUCKET_RULE}")


SegmentType = Literal["dynamic", "static", "hybrid", "auxiliary"]
BuildState = Literal["building", "ready"]

# What decides a segment's membership (docs/api.md#segment-types): a change of any of these is a new definition
# (definition_version + 1), which the rebuild engine applies.
DEFINITION_FIELDS = ("segment_type", "rules", "uris_include", "uris_exclude")
# Which definition fields each type may use: static = uris_include plus PIDs added by hand;
# dynamic = the records matching every rule; hybrid = (rule matches | uris_include) - uris_exclude;
# auxiliary = a tree node without members.
TYPE_FIELDS: dict[str, frozenset[str]] = {
    "static": frozenset({"uris_include"}),
    "dynamic": frozenset({"rules"}),
    "hybrid": frozenset({"rules", "uris_include", "uris_exclude"}),
    "auxiliary": frozenset(),
}
TYPE_MEANING = {
    "static": "its members are uris_include plus PIDs added by hand",
    "dynamic": "its members are the records matching every rule",
    "hybrid": "its members are (rule matches + uris_include) - uris_exclude",
    "auxiliary": "it groups child segments and has no members",
}


# Characters a name may not hold: control (Cc), format (Cf: zero-width, bidi controls, BOM ...),
# surrogate (Cs) and line/paragraph separators (Zl, Zp). Invisible or reordering characters would
# let two names look the same and differ, or hide what a name says.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Zero-width characters that uniqueness ignores (a name stored before they were refused compares
# without them).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_ZERO_WIDTH_TABLE = dict.fromkeys(map(ord, ZERO_WIDTH))


def clean_name(value: str) -> str:
    """A segment name as stored: the caller's spelling, trimmed; 1-255 characters, none of them
    a control, format (zero-width, bidi), surrogate or line/paragraph separator character."""
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(f"name must be 1-{NAME_MAX} characters after trimming")
    for ch in name:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"name must not contain control, format (zero-width or bidirectional) or "
                f"separator characters; found U+{ord(ch):04X}"
            )
    return name


def name_key(name: str) -> str:
    """What uniqueness compares: trimmed, without zero-width characters, NFC-normalised, case-folded."""
    return unicodedata.normalize("NFC", name.translate(_ZERO_WIDTH_TABLE).strip()).casefold()


def is_valid_pid(pid: object) -> bool:
    return isinstance(pid, str) and PID_RE.fullmatch(pid) is not None


def definition_problem(segment_type: str, definition: dict[str, Any]) -> str | None:
    """Why a definition does not fit its type (a field the type does not use is set), or None."""
    for field in ("rules", "uris_include", "uris_exclude"):
        if definition.get(field) and field not in TYPE_FIELDS.get(segment_type, frozenset()):
            allowed = [t for t in ("static", "dynamic", "hybrid") if field in TYPE_FIELDS[t]]
            return (
                f"Invalid '{field}': a {segment_type} segment has no {field} ({TYPE_MEANING[segment_type]}); "
                f"{field} belongs to {' and '.join(allowed)} segments"
            )
    return None


def needs_build(segment_type: str, definition: dict[str, Any]) -> bool:
    """Does this definition's membership come from the rebuild engine (rules or uris_include)?"""
    return segment_type in ("dynamic", "hybrid") or bool(segment_type == "static" and definition.get("uris_include"))


class NewSegment(BaseModel):
    """What a caller may set when creating a segment (both surfaces map onto this)."""

    name: str
    description: str | None = None
    source: str = "api"
    segment_type: SegmentType = "static"
    resource_type: str = "person"
    rules: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    parent_segment: str | None = None
    uris_include: list[str] = Field(default_factory=list)
    uris_exclude: list[str] = Field(default_factory=list)
    view_context: list[str] = Field(default_factory=list)
    active: bool = True
    system_segment: bool = False
    mailchimp_sync: bool = False
    fieldset_id: str | None = None  # a stored fieldset of the org: the Mailchimp sync's merge fields

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)


def storable_segment(new: NewSegment) -> NewSegment:
    """`new` as DynamoDB can store it (numbers as Decimal), checked against DynamoDB's limits
    (empty map keys, nesting, number range, item size): call it before anything is stored.
    Raises limits.LimitExceeded naming the field."""
    data = {name: limits.storable(value, name) for name, value in new.model_dump().items()}
    limits.check_item(data, what="The segment")
    return NewSegment.model_validate(data)


class Segment(NewSegment):
    """A segment as the core knows it, whichever surface created it: what a caller set, plus
    identity, size, times and state."""

    model_config = ConfigDict(extra="ignore")

    segment_id: str
    org_id: str
    bucket: str = ""
    current_size: int = 0
    created_at: str
    updated_at: str
    record_state: Literal["active", "deleted"] = "active"
    deleted_at: str | None = None
    created_by_request: str | None = None
    # Membership definition versioning for the rebuild engine (docs/decisions.md, "SheepCRM surface").
    definition_version: int = 1
    build_state: BuildState = "ready"
    build_progress: Any = None


Reason = Literal["api", "rule", "event", "admin"]


class Actor(BaseModel):
    """Who changes what, and why: the org acted for, the request or event that caused the change
    (recorded as the ledger's `api_request_id`), and the reason (api, rule, event, admin). An API
    route builds it from the authorizer's context; a queue consumer or the rules engine from its
    event. Use cases take an Actor and never look at HTTP."""

    model_config = ConfigDict(frozen=True)

    org_id: str
    bucket: str
    request_id: str
    reason: Reason = "api"
    key_id: str | None = None


def render_signal(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored feed entry in the public shape of its signal type (docs/api.md#signals): what the signal
    reads return and what `Segment Signal Detected` carries, so it sits below both."""
    data = entry.get("data") or {}
    common = {"minerva_pid": entry["minerva_pid"]}
    if entry["type"] == "death":
        return {
            **common,
            "obituary_id": data.get("obituary_id"),
            "date_of_death": data.get("date_of_death"),
            "publication_last_update_date": data.get("publication_last_update_date"),
            "first_observed_at": entry["first_observed_at"],
            "signal_metadata": {
                "source": data.get("source"),
                "obituary_url": data.get("obituary_url"),
                "publication_name": data.get("publication_name"),
                "confidence_score": data.get("confidence_score"),
            },
        }
    metadata = {"source": data.get("source"), "confidence_score": data.get("confidence_score")}
    if entry["type"] == "job_change":
        return {
            **common,
            "signal_id": entry["event_id"],
            "previous_employer": data.get("previous_employer"),
            "previous_title": data.get("previous_title"),
            "new_employer": data.get("new_employer"),
            "new_title": data.get("new_title"),
            "effective_date": data.get("effective_date"),
            "first_observed_at": entry["first_observed_at"],
            "signal_metadata": metadata,
        }
    return {
        **common,
        "signal_id": entry["event_id"],
        "previous_location": data.get("previous_location"),
        "new_location": data.get("new_location"),
        "effective_date": data.get("effective_date"),
        "first_observed_at": entry["first_observed_at"],
        "signal_metadata": metadata,
    }
