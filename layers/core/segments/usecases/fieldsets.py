"""Fieldsets (SheepCRM `/fieldset`): named lists of person-record fields per org, and the generated
fieldset of every field seen on the org's person records (uid `person`, not stored)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from segments import errors
from segments.formats import export_formats
from segments.models import Actor
from segments.store import fieldsets as store
from segments.timefmt import iso, now

GENERATED = "person"  # the uid of the generated fieldset of person records
RESOURCES = ("person",)  # what the org's records are (the registry holds person records only)
NAME_MAX = 255


def generated(actor: Actor) -> tuple[store.Fieldset, bool]:
    """The fieldset of every field seen on the org's person records, and whether the scan stopped
    at its cap (store.fieldsets.PEOPLE_SCAN_CAP records)."""
    fields, truncated = store.person_fields(actor.org_id)
    at = iso(now())
    found = store.Fieldset(
        fieldset_id=GENERATED,
        org_id=actor.org_id,
        name="Field list based on person",
        description="Every field seen on the organisation's person records",
        fields=fields,
        applicable_resources=["person"],
        created_at=at,
        updated_at=at,
    )
    return found, truncated


def _check_resource(resource: str | None) -> None:
    if resource is not None and resource not in RESOURCES:
        raise errors.ValidationFailed(f"Invalid 'resource': the registry holds {', '.join(RESOURCES)} records only")


def list_fieldsets(actor: Actor, *, resource: str | None) -> tuple[list[store.Fieldset], list[str]]:
    """The org's fieldsets (of `resource` when given, the generated one first); notes for `errors`."""
    _check_resource(resource)
    stored = store.list_all(actor.org_id)
    if resource is None:
        return stored, []
    made, truncated = generated(actor)
    notes = (
        [f"the generated fieldset read the first {store.PEOPLE_SCAN_CAP:,} person records only"] if truncated else []
    )
    return [made, *(f for f in stored if resource in f.applicable_resources)], notes


def get(actor: Actor, fieldset_id: str) -> store.Fieldset:
    if fieldset_id == GENERATED:
        return generated(actor)[0]
    return require_stored(actor, fieldset_id)


def require_stored(actor: Actor, fieldset_id: str) -> store.Fieldset:
    """One of the org's stored fieldsets (what a segment may name for its Mailchimp sync; the
    generated `person` one is not stored, so not offered); NotFound otherwise."""
    found = store.get(actor.org_id, fieldset_id) if _is_uid(fieldset_id) else None
    if found is None:
        raise errors.NotFound(f"Fieldset {fieldset_id} not found")
    return found


def _is_uid(value: str) -> bool:
    try:
        return uuid.UUID(value).hex == value
    except (ValueError, AttributeError, TypeError):
        return False


def create(
    actor: Actor,
    *,
    name: str | None,
    description: str | None,
    fields: Sequence[str] | None,
    resource: str | None,
    applicable_resources: Sequence[str] | None,
) -> store.Fieldset:
    """A new fieldset: `fields`, or with `resource` and no fields, every field seen on its records."""
    _check_resource(resource)
    chosen = list(fields or [])
    if not chosen and resource:
        chosen = generated(actor)[0].fields
    if not chosen:
        raise errors.ValidationFailed("Invalid 'fields': give at least one field, or a resource to take its fields")
    try:
        chosen = export_formats.check_fields(chosen)
    except ValueError as exc:
        raise errors.ValidationFailed(f"Invalid 'fields': {exc}") from exc
    label = (name or f"Field list based on {resource or 'person'}").strip()
    if not 1 <= len(label) <= NAME_MAX:
        raise errors.ValidationFailed(f"Invalid 'name': 1-{NAME_MAX} characters")
    applicable = list(dict.fromkeys(applicable_resources or [resource or "person"]))
    at = iso(now())
    made = store.Fieldset(
        fieldset_id=uuid.uuid4().hex,
        org_id=actor.org_id,
        name=label,
        description=(description or label)[:4096],
        fields=chosen,
        applicable_resources=applicable,
        created_at=at,
        updated_at=at,
    )
    store.put_new(made)
    return made


def delete(actor: Actor, fieldset_id: str) -> store.Fieldset:
    if fieldset_id == GENERATED:
        raise errors.ValidationFailed("The generated fieldset 'person' cannot be deleted")
    found = get(actor, fieldset_id)
    if not store.delete(actor.org_id, fieldset_id):
        raise errors.NotFound(f"Fieldset {fieldset_id} not found")
    return found.model_copy(update={"record_state": "deleted", "updated_at": iso(now())})
