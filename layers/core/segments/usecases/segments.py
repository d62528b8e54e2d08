"""Segment use cases: create, read one (the one reader of "a live segment"), list, browse, update,
delete, restore; and who may write a segment's members by hand."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from segments import cursors, errors
from segments.models import (
    DEFINITION_FIELDS,
    Actor,
    BuildState,
    NewSegment,
    Segment,
    definition_problem,
    name_key,
    needs_build,
)
from segments.observability import MetricUnit, metrics
from segments.store import limits
from segments.store import segments as store
from segments.store.segments import SegmentRecord
from segments.timefmt import iso, now
from segments.usecases import fieldsets
from segments.usecases import segment_tree as tree

SEGMENT_NOT_FOUND = "Segment not found"
SYSTEM_SEGMENT = "System segments can't be edited or deleted"
STALE_RETRIES = 3
BUSY = "The segment is being changed by another request; retry later"
_LISTING_KEY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
# What an update may change (system_segment, resource_type, source and identity never change).
EDITABLE = frozenset(
    {
        "name",
        "description",
        "segment_type",
        "rules",
        "tags",
        "uris_include",
        "uris_exclude",
        "parent_segment",
        "active",
        "view_context",
        "mailchimp_sync",
        "fieldset_id",
    }
)
_EMPTY_DEFINITION: dict[str, Any] = {"segment_type": "static", "rules": [], "uris_include": [], "uris_exclude": []}


def _definition(segment: SegmentRecord | Mapping[str, Any]) -> dict[str, Any]:
    return {f: limits.plain(segment.get(f) or _EMPTY_DEFINITION[f]) for f in DEFINITION_FIELDS}


def _build_state(definition: dict[str, Any]) -> BuildState:
    return "building" if needs_build(definition["segment_type"], definition) else "ready"


def create_segment(actor: Actor, new: NewSegment, *, segment_id: str | None = None) -> SegmentRecord:
    """Create an empty segment (with `segment_id` when given: the caller made the id, e.g. to name
    the segment after it); the name must be unique in the org (enforced by the store). Its
    definition is version 1; a rule or uri based one starts "building" (the rebuild engine fills
    it), any other is "ready". A parent must be a live segment of the bucket, still live at commit."""
    definition = _definition(new.model_dump())
    problem = definition_problem(definition["segment_type"], definition)
    if problem:
        raise errors.ValidationFailed(problem)
    if new.fieldset_id is not None:
        fieldsets.require_stored(actor, new.fieldset_id)  # NotFound: not one of the org's fieldsets
    for _ in range(STALE_RETRIES):
        checks: dict[str, dict[str, Any]] = {}
        if new.parent_segment is not None:
            checks = tree.chain_checks(actor, tree.parent_chain(actor, None, new.parent_segment), whole=False)
        at = iso(now())
        segment = Segment(
            segment_id=segment_id or str(uuid.uuid4()),
            org_id=actor.org_id,
            bucket=actor.bucket,
            current_size=0,
            created_at=at,
            updated_at=at,
            record_state="active",
            created_by_request=actor.request_id,
            definition_version=1,
            build_state=_build_state(definition),
            **new.model_dump(),
        )
        try:
            created = store.put_with_name(segment.model_dump(), name_key(segment.name), checks)
        except store.Stale:
            continue  # the parent was deleted or moved meanwhile: walk again
        metrics.add_metric(name="SegmentsCreated", unit=MetricUnit.Count, value=1)
        return created
    raise errors.Retryable(BUSY)


def segment_id_or_404(value: str) -> str:
    """A segment id in canonical form; anything that is not a UUID names no segment."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise errors.NotFound(SEGMENT_NOT_FOUND) from exc


def live_record(actor: Actor, segment_id: str) -> SegmentRecord:
    """The actor's live segment as stored; a missing, malformed, deleted or foreign id is NotFound
    alike."""
    record = store.get_live(actor.org_id, segment_id_or_404(segment_id))
    if record is None:
        raise errors.NotFound(SEGMENT_NOT_FOUND)
    return record


def get_segment(actor: Actor, segment_id: str) -> SegmentRecord:
    """The actor's live segment as callers see it (a record written before definitions were
    versioned reads as version 1, ready)."""
    return with_build_fields(live_record(actor, segment_id))


def with_build_fields(segment: SegmentRecord) -> SegmentRecord:
    return replace(
        segment,
        definition_version=1 if segment.definition_version is None else segment.definition_version,
        build_state=segment.build_state or "ready",
    )


def list_segments(actor: Actor, *, cursor: str | None, limit: int) -> tuple[list[SegmentRecord], str | None]:
    """The org's live segments, newest first, `limit` a page, as stored (no defaults filled in), and
    the opaque cursor of the next page (None on the last)."""
    after = None
    if cursor is not None:
        after = cursors.decode(cursor, "segments", actor.org_id)
        if not isinstance(after, str) or not _LISTING_KEY.match(after):
            raise errors.ValidationFailed(cursors.INVALID)
    found, more = store.list_live(actor.org_id, after=after, limit=limit)
    next_cursor = cursors.encode("segments", actor.org_id, found[-1][1]) if more else None
    return [segment for segment, _ in found], next_cursor


def update_segment(actor: Actor, segment_id: str, changes: dict[str, Any]) -> SegmentRecord:
    """Change a live segment's EDITABLE fields (None clears description and parent_segment).

    A new name takes its lock in the same transaction that frees the old one, so uniqueness holds;
    a case-only rename keeps the lock it has. A changed definition (segment_type, rules,
    uris_include, uris_exclude) must fit its type, gets definition_version + 1 and build_state
    "building" (or "ready" when neither the old nor the new definition needs the rebuild engine),
    all in the same conditional write, which fails (and is retried from a fresh read) if the
    version changed meanwhile. A new parent is walked for cycles and the walk re-checked at commit.
    Making a segment auxiliary requires it to have no members. A new fieldset_id must name one of
    the org's stored fieldsets (NotFound); the stored one sent back unchanged is not checked again."""
    if not changes:
        raise errors.ValidationFailed("Nothing to update: give at least one field to change")
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise errors.ValidationFailed(f"Invalid '{unknown[0]}': it can't be changed")
    for _ in range(STALE_RETRIES):
        record = _editable(actor, segment_id)
        sid = record.segment_id
        fieldset_id = changes.get("fieldset_id")
        if fieldset_id is not None and fieldset_id != record.fieldset_id:
            fieldsets.require_stored(actor, fieldset_id)
        sets: dict[str, Any] = {"updated_at": iso(now())}
        removes: list[str] = []
        new_key = None
        for field, value in changes.items():
            if field == "name":
                new_key = name_key(value)
                sets |= {"name": value, "name_key": new_key}
            elif value is None:
                removes.append(field)
            else:
                sets[field] = value
        old = _definition(record)
        new = {**old, **{f: limits.plain(changes[f]) for f in DEFINITION_FIELDS if f in changes}}
        redefined = new != old
        if redefined:
            problem = definition_problem(new["segment_type"], new)
            if problem:
                raise errors.ValidationFailed(problem)
            building = needs_build(old["segment_type"], old) or needs_build(new["segment_type"], new)
            sets |= {
                "definition_version": (record.definition_version or 1) + 1,
                "build_state": "building" if building else "ready",
            }
            removes.append("build_progress")
        to_auxiliary = new["segment_type"] == "auxiliary" and old["segment_type"] != "auxiliary"
        if to_auxiliary and (record.current_size or 0) > 0:
            raise errors.Conflict(
                f"Segment {sid} has {record.current_size} members: remove them before making "
                f"it auxiliary (auxiliary segments have no members)"
            )
        checks: dict[str, dict[str, Any]] = {}
        parent = changes.get("parent_segment")
        if parent is not None and parent != record.parent_segment:
            checks = tree.chain_checks(actor, tree.parent_chain(actor, sid, parent), whole=True)
        try:
            store.update(
                actor.org_id,
                sid,
                old_name_key=_name_key_of(record),
                sets=sets,
                removes=removes,
                new_name_key=new_key,
                version=record.definition_version,
                checks=checks,
                empty_at_ms=int(time.time() * 1000) if to_auxiliary else None,
            )
        except store.Stale:
            continue  # renamed, redefined, moved or deleted meanwhile: read it again
        metrics.add_metric(name="SegmentsUpdated", unit=MetricUnit.Count, value=1)
        return get_segment(actor, sid)
    raise errors.Retryable(BUSY)


def delete_segment(actor: Actor, segment_id: str) -> SegmentRecord:
    """Soft delete: record_state=deleted and the name freed in one transaction; members stay stored
    but are no longer served. Returns the deleted segment as callers see it."""
    for _ in range(STALE_RETRIES):
        record = _editable(actor, segment_id)
        at = iso(now())
        try:
            store.delete(actor.org_id, record.segment_id, name_key=_name_key_of(record), at=at)
        except store.Stale:
            continue
        metrics.add_metric(name="SegmentsDeleted", unit=MetricUnit.Count, value=1)
        return with_build_fields(replace(record, record_state="deleted", deleted_at=at, updated_at=at))
    raise errors.Retryable(BUSY)


def restore_segment(actor: Actor, segment_id: str) -> SegmentRecord:
    """A deleted segment back to active, taking its name lock again in the same transaction:
    Conflict when the segment is not deleted or another live segment has its name now. A rule or
    uri based segment is "building" again (records changed while it was deleted), same version."""
    sid = segment_id_or_404(segment_id)
    for _ in range(STALE_RETRIES):
        record = store.get_any(actor.org_id, sid)
        if record is None:
            raise errors.NotFound(SEGMENT_NOT_FOUND)
        if record.record_state != "deleted":
            raise errors.Conflict(f"Segment {sid} is not deleted: there is nothing to restore")
        sets: dict[str, Any] = {"updated_at": iso(now())}
        definition = _definition(record)
        if needs_build(definition["segment_type"], definition):
            sets["build_state"] = "building"
        try:
            store.restore(actor.org_id, sid, name_key=_name_key_of(record), sets=sets, name=record.name)
        except errors.NameTaken as exc:
            raise errors.Conflict(
                f"Segment name {record.name!r} is used by another segment now: rename or "
                f"delete that one, then restore this one"
            ) from exc
        except store.Stale:
            continue
        metrics.add_metric(name="SegmentsRestored", unit=MetricUnit.Count, value=1)
        return get_segment(actor, sid)
    raise errors.Retryable(BUSY)


# ------------------------------------------------------------------ browsing (SheepCRM listings)


@dataclass(frozen=True)
class Browsed:
    """One 1-based page of a listing: `count` counts every match, `next_page` is None on the last."""

    count: int
    page: int
    page_size: int
    items: list[SegmentRecord]
    next_page: int | None


def browse(actor: Actor, *, include_inactive: bool, name_contains: str | None, page: int, page_size: int) -> Browsed:
    """The org's live segments by name (case-insensitive, then id), one 1-based page. Without
    `include_inactive`, only active=true ones; `name_contains` compares folded names (as uniqueness
    does)."""
    found = store.all_live(actor.org_id)
    if not include_inactive:
        found = [s for s in found if s.active is not False]
    if name_contains is not None:
        wanted = name_key(name_contains)
        found = [s for s in found if wanted in name_key(s.name)]
    found.sort(key=_by_name)
    start = (page - 1) * page_size
    return Browsed(
        count=len(found),
        page=page,
        page_size=page_size,
        items=[with_build_fields(s) for s in found[start : start + page_size]],
        next_page=page + 1 if start + page_size < len(found) else None,
    )


def trees(actor: Actor) -> list[tree.Node]:
    """The org's segment trees (auxiliary segments and segments with a parent), nested, by name;
    each node's segment as callers see it."""
    return tree.forest(actor.bucket, [with_build_fields(s) for s in store.all_live(actor.org_id)])


def in_view_context(actor: Actor, view_context: str) -> list[SegmentRecord]:
    """The org's live segments whose view_context holds `view_context`, by name (then id)."""
    found = [s for s in store.all_live(actor.org_id) if view_context in (s.view_context or ())]
    found.sort(key=_by_name)
    return [with_build_fields(s) for s in found]


def _by_name(segment: SegmentRecord) -> tuple[str, str]:
    return name_key(segment.name), segment.segment_id


# ------------------------------------------------------------------ who writes members


def member_types(actor: Actor) -> Sequence[str]:
    """The segment types whose members `actor` may add or remove: the rules engine (reason "rule")
    maintains static (uris_include), dynamic and hybrid segments; everyone else only static ones.
    Auxiliary segments have no members."""
    return ("static", "dynamic", "hybrid") if actor.reason == "rule" else ("static",)


def members_refused(segment_id: str, segment_type: str | None) -> errors.DomainError:
    """Why members of this segment can't be changed by hand."""
    why = {
        "dynamic": "its members come from its rules; change the rules instead",
        "hybrid": "its members come from its rules and uris_include; to add or remove a person by hand, put their "
        "uri in uris_include or uris_exclude (PUT /segments/v2/{bucket}/segment/{uid})",
        "auxiliary": "it groups child segments and has no members",
    }.get(segment_type or "", "its members are maintained by the rules engine")
    return errors.ValidationFailed(f"Segment {segment_id} is {segment_type}: {why}")


def _editable(actor: Actor, segment_id: str) -> SegmentRecord:
    record = live_record(actor, segment_id)
    if record.system_segment:
        raise errors.Forbidden(SYSTEM_SEGMENT)
    return record


def _name_key_of(record: SegmentRecord) -> str:
    return record.name_key or name_key(record.name)
