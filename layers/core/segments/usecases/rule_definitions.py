"""What a rule segment's membership is made of (docs/api.md#segment-types), read from a segment record or an
index entry, and the membership it asks for one person record. Pure: no I/O.

| type      | members                                                   | kept current by           |
|-----------|-----------------------------------------------------------|---------------------------|
| dynamic   | records matching every rule                               | the rule index + rebuilds |
| hybrid    | (matches or uris_include) - uris_exclude                   | the rule index + rebuilds |
| static    | uris_include plus members added by PID                    | a rebuild adds uris_include |
| auxiliary | none                                                      | nothing                   |

Until every segment record carries them, a missing `definition_version` is 1 and a missing
`build_state` of a dynamic or hybrid segment reads as "building".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from segments import rules as grammar
from segments.observability import logger
from segments.store import keys
from segments.store.segments import SegmentRecord

RULE_TYPES = frozenset({"dynamic", "hybrid"})
# Attributes of a person item that are storage, not person data: never a rule's field.
RECORD_STORAGE = frozenset({"pk", "sk", "gsi3pk", "gsi3sk"})
_CACHE_MAX = 4096


@dataclass(frozen=True)
class Definition:
    org_id: str
    segment_id: str
    bucket: str
    segment_type: str
    rules: tuple[Any, ...]
    include: frozenset[str]
    exclude: frozenset[str]
    version: int
    live: bool

    @classmethod
    def of_segment(cls, record: SegmentRecord | Mapping[str, Any]) -> Definition:
        """From a segment: the store's record, or an item's image as a plain dict (a stream's)."""
        bucket = str(record.get("bucket") or "")
        return cls(
            org_id=str(record["org_id"]),
            segment_id=str(record["segment_id"]),
            bucket=bucket,
            segment_type=str(record.get("segment_type") or "static"),
            rules=tuple(record.get("rules") or ()),
            include=_pids(record.get("uris_include"), bucket),
            exclude=_pids(record.get("uris_exclude"), bucket),
            version=int(record.get("definition_version") or 1),
            live=record.get("record_state", "active") == "active",
        )

    @classmethod
    def of_entry(cls, org_id: str, segment_id: str, entry: Mapping[str, Any]) -> Definition:
        """From a rule index entry."""
        return cls(
            org_id=org_id,
            segment_id=segment_id,
            bucket="",
            segment_type=str(entry["segment_type"]),
            rules=tuple(entry.get("rules") or ()),
            include=frozenset(entry.get("include") or ()),
            exclude=frozenset(entry.get("exclude") or ()),
            version=int(entry["definition_version"]),
            live=True,
        )

    @property
    def indexed(self) -> bool:
        """Re-evaluated when a person record changes: live dynamic and hybrid segments."""
        return self.live and self.segment_type in RULE_TYPES

    @property
    def needs_build(self) -> bool:
        """A definition change of this segment starts a rebuild."""
        return self.live and (self.segment_type in RULE_TYPES or (self.segment_type == "static" and bool(self.include)))

    def same_as(self, other: Definition) -> bool:
        """The same membership definition (what a rebuild depends on)."""
        return (self.segment_type, _canonical(self.rules), self.include, self.exclude, self.version, self.live) == (
            other.segment_type,
            _canonical(other.rules),
            other.include,
            other.exclude,
            other.version,
            other.live,
        )

    def fields(self) -> frozenset[str]:
        """The index keys it is filed under: the top-level record fields its rules read, plus
        ANY_FIELD (read when a record is created) when its rules match a record lacking every field
        they read — no rules, or negative ones (`not_equal_to`, `none_of`, a raw `not`): a new
        record holding none of its fields is then a member, and no changed field would find it."""
        try:
            read = frozenset(grammar.fields_read(list(self.rules)))
        except Exception:  # noqa: BLE001 - unreadable rules are filed where a new record finds them
            logger.exception("rules of a segment could not be read", extra={"segment_id": self.segment_id})
            return frozenset({keys.ANY_FIELD})
        match = matcher(self)
        if not read or match is None or match({}):
            return read | {keys.ANY_FIELD}
        return read

    def entry(self) -> dict[str, Any]:
        """The rule index entry."""
        out: dict[str, Any] = {
            "segment_type": self.segment_type,
            "rules": list(self.rules),
            "definition_version": self.version,
        }
        if self.segment_type == "hybrid":
            out |= {"include": sorted(self.include), "exclude": sorted(self.exclude)}
        return out

    def wants(self, pid: str, record: Mapping[str, Any] | None) -> bool | None:
        """Should `pid` (whose person record is `record`, None when it has none) be a member?
        None when the rules cannot be evaluated (left as it is)."""
        if self.segment_type == "static":
            return True if pid in self.include else None
        if self.segment_type not in RULE_TYPES:
            return None
        if pid in self.exclude and self.segment_type == "hybrid":
            return False
        if self.segment_type == "hybrid" and pid in self.include:
            return True
        if record is None:
            return False
        match = matcher(self)
        if match is None:
            return None
        return bool(match(record))


def person(record: Mapping[str, Any]) -> dict[str, Any]:
    """A person item as rules see it: without its storage attributes."""
    return {k: v for k, v in record.items() if k not in RECORD_STORAGE}


_compiled: dict[tuple[str, int, str], Callable[[Mapping[str, Any]], bool] | None] = {}


def matcher(definition: Definition) -> Callable[[Mapping[str, Any]], bool] | None:
    """The compiled rules of a definition, compiled once per (segment, version, rules) per container;
    None (logged) when they cannot be compiled."""
    cache_key = (definition.segment_id, definition.version, _canonical(definition.rules))
    if cache_key not in _compiled:
        if len(_compiled) >= _CACHE_MAX:
            _compiled.clear()
        try:
            _compiled[cache_key] = grammar.compile_rules(grammar.validate_rules(list(definition.rules)))
        except Exception:  # noqa: BLE001 - a segment with rules we cannot evaluate changes no membership
            logger.exception("rules of a segment could not be compiled", extra={"segment_id": definition.segment_id})
            _compiled[cache_key] = None
    return _compiled[cache_key]


def clear_cache() -> None:
    _compiled.clear()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _pids(uris: Any, bucket: str) -> frozenset[str]:
    found = (keys.person_uri_pid(str(u), bucket or None) for u in (uris or ()))
    return frozenset(p for p in found if p)
