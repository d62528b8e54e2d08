"""Domain models. Storage shapes live in store/; wire shapes in surfaces/."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_MAX = 255
DESCRIPTION_MAX = 4096
PID_RE = re.compile(r"^p-[A-Za-z0-9]{1,64}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

SegmentType = Literal["dynamic", "static", "hybrid", "auxiliary"]


def clean_name(value: str) -> str:
    """A segment name as stored: the caller's spelling, trimmed; 1-255 characters."""
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(f"name must be 1-{NAME_MAX} characters after trimming")
    return name


def name_key(name: str) -> str:
    """What uniqueness compares: trimmed, NFC-normalised, case-folded."""
    return unicodedata.normalize("NFC", name.strip()).casefold()


def is_valid_pid(pid: object) -> bool:
    return isinstance(pid, str) and PID_RE.match(pid) is not None


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

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)


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
