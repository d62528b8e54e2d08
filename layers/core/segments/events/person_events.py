"""Person events in (docs/api.md#person-events): the event, its per-type data, and how an SQS message carries it.

Everything a producer sends is validated here before anything is stored: PID format, an
ISO-8601 `observed_at` with a zone (normalised to UTC, microseconds, `Z`), bounded strings,
numbers as Decimal (DynamoDB takes no float), and for `profile` a bounded map of attributes.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from segments.models import PID_RE, check_org_and_bucket
from segments.store import limits
from segments.timefmt import instant

EventType = Literal["death", "job_change", "relocation", "profile"]
LifecycleType = Literal["death", "job_change", "relocation"]
LIFECYCLE_TYPES: tuple[LifecycleType, ...] = ("death", "job_change", "relocation")

EVENTBRIDGE_SOURCE = "segments.people"
EVENTBRIDGE_DETAIL_TYPE = "Person Event"

EVENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # no '#': it sits in sort keys
TEXT_MAX = 1_000
URL_MAX = 2_048
MESSAGE_MAX_BYTES = 256 * 1024  # SQS and EventBridge limits alike
ATTRIBUTE_NAME_MAX = 100
ATTRIBUTES_MAX = 200
ATTRIBUTES_MAX_BYTES = 64 * 1024
ATTRIBUTE_DEPTH_MAX = 16
# Attributes a profile may not set: storage keys, identity, and the lifecycle facts' versions.
RESERVED_ATTRIBUTES = frozenset(
    {
        "pk",
        "sk",
        "gsi1pk",
        "gsi1sk",
        "gsi2pk",
        "gsi2sk",
        "gsi3pk",
        "gsi3sk",
        "org_id",
        "minerva_pid",
        "profile_observed_at",
    }
)


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: DynamoDB refuses it
        raise ValueError("must be valid Unicode") from exc
    return value


Text = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_unicode)]
Url = Annotated[str, StringConstraints(max_length=URL_MAX), AfterValidator(_unicode)]


def _iso_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO date (YYYY-MM-DD)") from exc
    if len(value) != 10:
        raise ValueError("must be an ISO date (YYYY-MM-DD)")
    return value


IsoDate = Annotated[str, AfterValidator(_iso_date)]


def _org_id(value: str) -> str:
    check_org_and_bucket(value)
    return value


OrgId = Annotated[str, AfterValidator(_org_id)]


class _Data(BaseModel):
    """Unknown fields are dropped: producers may send more than we store."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    source: Text | None = None
    confidence_score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class DeathData(_Data):
    obituary_id: Annotated[Text, StringConstraints(min_length=1)]
    date_of_death: IsoDate | None = None
    publication_last_update_date: IsoDate | None = None
    obituary_url: Url | None = None
    publication_name: Text | None = None


class JobChangeData(_Data):
    previous_employer: Text | None = None
    previous_title: Text | None = None
    new_employer: Text | None = None
    new_title: Text | None = None
    effective_date: IsoDate | None = None

    @model_validator(mode="after")
    def _something_new(self) -> JobChangeData:
        if self.new_employer is None and self.new_title is None:
            raise ValueError("a job change needs new_employer or new_title")
        return self


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    city: Text | None = None
    region: Text | None = None
    country: Text | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None


class RelocationData(_Data):
    previous_location: Location | None = None
    new_location: Location
    effective_date: IsoDate | None = None


class ProfileData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attributes: dict[str, Any]

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("attributes must not be empty")
        if len(value) > ATTRIBUTES_MAX:
            raise ValueError(f"at most {ATTRIBUTES_MAX} attributes")
        for name in value:
            if not isinstance(name, str) or not 1 <= len(name) <= ATTRIBUTE_NAME_MAX:
                raise ValueError(f"attribute names must be 1-{ATTRIBUTE_NAME_MAX} characters")
            if name in RESERVED_ATTRIBUTES or name.endswith(("_observed_at", "_event_id")):
                raise ValueError(f"attribute {name!r} is reserved")
        try:
            size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        except (ValueError, TypeError, RecursionError) as exc:
            raise ValueError("attributes must be JSON values (no NaN or Infinity)") from exc
        if size > ATTRIBUTES_MAX_BYTES:
            raise ValueError(f"attributes must be at most {ATTRIBUTES_MAX_BYTES} bytes as JSON")
        _check_depth(value, 0)
        return value


def _check_depth(value: Any, depth: int) -> None:
    if depth > ATTRIBUTE_DEPTH_MAX:
        raise ValueError(f"attributes nest at most {ATTRIBUTE_DEPTH_MAX} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: DynamoDB refuses it
            raise ValueError("attribute strings must be valid Unicode") from exc


DATA_MODELS: dict[str, type[BaseModel]] = {
    "death": DeathData,
    "job_change": JobChangeData,
    "relocation": RelocationData,
    "profile": ProfileData,
}


class PersonEvent(BaseModel):
    """A person event as producers send it; `observed_at` normalised, `data` validated per type."""

    model_config = ConfigDict(extra="ignore")

    event_id: Annotated[str, Field(pattern=EVENT_ID_RE.pattern)]
    type: EventType
    minerva_pid: Annotated[str, Field(pattern=PID_RE.pattern)]
    observed_at: str
    org_id: OrgId | None = None
    data: dict[str, Any]

    @field_validator("observed_at")
    @classmethod
    def _observed_at(cls, value: str) -> str:
        return instant(value)

    @model_validator(mode="after")
    def _per_type(self) -> PersonEvent:
        model = DATA_MODELS[self.type]
        self.data = model.model_validate(self.data).model_dump(exclude_none=True)
        if self.type == "profile" and self.org_id is None:
            raise ValueError("a profile event needs org_id")
        if self.type != "profile" and self.org_id is not None:
            # A lifecycle fact is about the person, not an org's record of them: it reaches every
            # org holding the PID. An org_id would promise a scoping that is not applied.
            raise ValueError(f"a {self.type} event is not org-scoped: org_id must be null or absent")
        try:  # what DynamoDB can store, as for segment values (store/limits.py): numbers' range and digits, empty keys
            limits.storable(self.data, "data")
        except limits.LimitExceeded as exc:
            raise ValueError(f"{exc.field}: {exc.message}") from None
        return self

    def stored_data(self) -> dict[str, Any]:
        """`data` as DynamoDB stores it: numbers as Decimal (exactly, as store/limits.py converts them)."""
        stored: dict[str, Any] = limits.storable(self.data, "data")
        return stored


class InvalidEvent(Exception):
    """A message that can never be applied; `reason` is safe to log (no field values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(payload: Any) -> PersonEvent:
    """A person event from a decoded message: an EventBridge event carrying it in `detail`, or the
    bare event. InvalidEvent says why not, naming fields but never their values."""
    if isinstance(payload, dict) and "detail-type" in payload and "detail" in payload:
        if payload.get("detail-type") != EVENTBRIDGE_DETAIL_TYPE or payload.get("source") != EVENTBRIDGE_SOURCE:
            raise InvalidEvent("an EventBridge event that is not a segments.people Person Event")
        payload = payload["detail"]
    if not isinstance(payload, dict):
        raise InvalidEvent("the event is not a JSON object")
    try:
        return PersonEvent.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False, include_context=False)[:5]
        )
        raise InvalidEvent(f"invalid person event: {problems}") from None


def parse_message(body: str) -> PersonEvent:
    """A person event from an SQS message body (JSON text)."""
    if len(body.encode("utf-8", "surrogatepass")) > MESSAGE_MAX_BYTES:
        raise InvalidEvent("the message is over 256 KB")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidEvent("the message body is not JSON") from None
    return parse(payload)
