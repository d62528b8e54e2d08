"""A segment's config (SheepCRM `GET .../segment/{uid}/config`): how a client shows, searches and
sorts the records of a segment, derived from its resource type and that type's default fieldset.

The vendor's document gives the shape (`config.mapping`: collection, contact fields, field_list,
fields with labels and form types, search fields ...) and no values. A fieldset here is a fixed
list per resource type (the exports issue owns stored fieldsets): for `person` it is the fields a
person record of this service holds (the profile fields clients send, and the lifecycle facts
signals write: deceased, employer, title, location); any other resource type gets the fields every
record has (uri, display value, dates). `search_fields` are exactly the fields the lookup matches
(usecases/lookup.py reads them from here), so what the config promises is what the lookup does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segments.models import Actor
from segments.usecases import segments as usecase


@dataclass(frozen=True)
class Field:
    field: str
    label: str
    form_type: str  # text | email | date | datetime | checkbox | readonly
    style: str = ""


@dataclass(frozen=True)
class Fieldset:
    name: str  # plural, as a client titles a list
    name_singular: str
    fields: tuple[Field, ...]
    search_fields: tuple[str, ...]  # what the lookup matches (case-insensitive, part of the value)
    sort_by: tuple[str, ...]
    contact_field: str | None  # the field naming the contact a record belongs to ("uri": the record is one)
    join_people: bool = False
    join_orgs: bool = False


COMMON = (
    Field("uri", "URI", "readonly"),
    Field("display_value", "Name", "readonly"),
    Field("created", "Created", "datetime", "readonly"),
    Field("last_updated", "Last updated", "datetime", "readonly"),
)

PERSON = Fieldset(
    name="People",
    name_singular="Person",
    fields=(
        Field("minerva_pid", "PID", "readonly"),
        Field("first_name", "First name", "text"),
        Field("last_name", "Last name", "text"),
        Field("name", "Full name", "text"),
        Field("email", "Email", "email"),
        Field("employer", "Employer", "text"),
        Field("title", "Job title", "text"),
        Field("location.city", "City", "text"),
        Field("location.country", "Country", "text"),
        Field("deceased", "Deceased", "checkbox", "readonly"),
        Field("date_of_death", "Date of death", "date", "readonly"),
    ),
    search_fields=("first_name", "last_name", "name", "email"),
    sort_by=("last_name", "first_name", "minerva_pid"),
    contact_field="uri",
    join_people=True,
)

_CONTACT_FIELDS: dict[str, str] = {
    "contact": "uri",
    "organisation": "uri",
    "membership": "member",
    "payment": "contact",
    "booking": "contact",
    "reservation": "contact",
    "form_response": "contact",
    "group_member": "contact",
    "journal": "contact",
    "message": "contact",
    "vehicle": "owner",
}


def fieldset(resource_type: str) -> Fieldset:
    """The default fieldset of a resource type."""
    if resource_type == "person":
        return PERSON
    title = resource_type.replace("_", " ")
    return Fieldset(
        name=f"{title.capitalize()}s",
        name_singular=title.capitalize(),
        fields=COMMON,
        search_fields=("display_value",),
        sort_by=("display_value",),
        contact_field=_CONTACT_FIELDS.get(resource_type),
        join_people=resource_type in _CONTACT_FIELDS,
        join_orgs=resource_type == "organisation",
    )


def search_placeholder(fs: Fieldset) -> str:
    labels = {f.field: f.label.lower() for f in fs.fields}
    named = [labels.get(f, f) for f in fs.search_fields]
    extra = " or PID" if fs is PERSON else ""
    return f"Search by {', '.join(named)}{extra}"


def config(actor: Actor, segment_id: str) -> dict[str, Any]:
    """The config of a live segment of the actor's org (NotFound alike for missing, deleted or
    foreign): {resource_type, segment_id, segment_type, view_context, system_segment, mapping}."""
    segment = usecase.get_segment(actor, segment_id)
    resource_type = segment.resource_type or "person"
    fs = fieldset(resource_type)
    contact_search = list(fs.search_fields) if fs.contact_field == "uri" else []
    mapping = {
        "collection": resource_type,
        "contact_field": fs.contact_field or "",
        "contact_search_fields": contact_search,
        "field_list": [f.field for f in fs.fields],
        "fields": [{"field": f.field, "form_type": f.form_type, "label": f.label, "style": f.style} for f in fs.fields],
        "join_orgs": fs.join_orgs,
        "join_people": fs.join_people,
        "name": fs.name,
        "name_singular": fs.name_singular,
        "prefix": f"/{actor.bucket}/{resource_type}/",
        "search_fields": list(fs.search_fields),
        "search_placeholder": search_placeholder(fs),
        "sort_by": list(fs.sort_by),
        "unique_field": "minerva_pid" if resource_type == "person" else "uri",
        "use_mapreduce": False,
    }
    return {
        "segment_id": segment.segment_id,
        "resource_type": resource_type,
        "segment_type": segment.segment_type or "static",
        "view_context": list(segment.view_context or ()),
        "system_segment": bool(segment.system_segment),
        "record_state": segment.record_state,
        "mapping": mapping,
    }
