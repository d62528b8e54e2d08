"""Look up records of a segment by one search term (SheepCRM `GET .../segment/{uid}/lookup?q=`).

A term is either
- a PID or uri prefix (`p-ab12`, `/{bucket}/person/p-ab12`): the segment's members whose PID starts
  with it, found by a key condition on the member partition (`begins_with(sk, "PID#p-ab12")`): an
  index seek, whatever the segment's size; PIDs compare exactly (they are case-sensitive);
- anything else: a part of a name or email field of the person record (the `search_fields` of the
  segment's config, plus first and last name together), compared case-insensitively
  (`str.casefold`). Person records are not indexed by name, so this is a **capped scan**: the
  segment's members are read in PID order, at most SCAN_CAP member items, each page's person
  records fetched in one BatchGetItem per 100.

Cost, either way: at most SCAN_CAP member items read (⌈SCAN_CAP / PAGE⌉ Queries) and
⌈SCAN_CAP / 100⌉ BatchGetItem of person records. `Found.truncated` says that matches may have been
left out: the cap stopped the scan before the segment's last member, or `limit` results were found
before it; `scanned` says how many members were examined.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from segments import errors
from segments.models import Actor
from segments.store import records as store
from segments.usecases import segments as usecase
from segments.usecases.segment_config import fieldset

SCAN_CAP = 2_000  # member items examined by one lookup
PAGE = 500  # member items a Query evaluates
Q_MAX = 200
LIMIT_MAX = 100
LIMIT_DEFAULT = 20
_PID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True)
class Found:
    results: list[dict[str, Any]]
    scanned: int  # member items examined
    truncated: bool  # more matches may exist (the scan cap or `limit` stopped it)
    by: str  # "pid" (key prefix) or "fields" (capped scan)


def clean_term(q: str) -> str:
    """The search term: trimmed, 1-Q_MAX characters, no control or format characters."""
    term = q.strip()
    if not 1 <= len(term) <= Q_MAX:
        raise errors.ValidationFailed(f"Invalid 'q': must be 1-{Q_MAX} characters (one search term)")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in term):
        raise errors.ValidationFailed("Invalid 'q': control, format or separator characters are not allowed")
    return term


def parse_term(term: str, bucket: str) -> tuple[str, str]:
    """(how to search, the PID or prefix): ("prefix", p) for a PID prefix (`p-...`) or a person uri
    of the bucket cut short; ("exact", pid) for a whole uri (`/{bucket}/person/{pid}/`); ("none", "")
    for a uri of another bucket or resource (it names no record here); ("fields", "") otherwise."""
    if term.startswith("/"):
        base = f"/{bucket}/person/"
        if base.startswith(term):
            return "prefix", ""  # every member's uri starts with it
        if not term.startswith(base):
            return "none", ""
        rest = term[len(base) :]
        whole = rest.endswith("/")
        rest = rest.removesuffix("/")
        if not _is_pid_prefix(rest) or (whole and not rest):
            return "none", ""
        return ("exact" if whole else "prefix"), rest
    if term.startswith("p-") and _is_pid_prefix(term):
        return "prefix", term
    return "fields", ""


def _is_pid_prefix(text: str) -> bool:
    if text in ("", "p", "p-"):
        return True
    return text.startswith("p-") and len(text) <= 66 and all(ch in _PID_CHARS for ch in text[2:])


def _fold(value: str) -> str:
    return unicodedata.normalize("NFC", value).casefold()


def _texts(record: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for name in fields:
        value = record.get(name)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                out.append(v)
    first, last = record.get("first_name"), record.get("last_name")
    if {"first_name", "last_name"} <= set(fields) and isinstance(first, str) and isinstance(last, str):
        out.append(f"{first} {last}")  # "ada lovelace" finds Ada Lovelace
    return out


def display_value(record: dict[str, Any] | None, pid: str) -> str:
    """How a record is shown: its name, else first and last name, else its email, else its PID."""
    if record:
        first, last = record.get("first_name"), record.get("last_name")
        names = " ".join(p.strip() for p in (first, last) if isinstance(p, str) and p.strip())
        for text in [*_texts(record, ("name",)), names, *_texts(record, ("email",))]:
            if text.strip():
                return text.strip()
    return pid


def item(bucket: str, pid: str, record: dict[str, Any] | None) -> dict[str, Any]:
    """One entry of the vendor's `lookup` list."""
    uri = f"/{bucket}/person/{pid}/"
    shown = display_value(record, pid)
    email = (record or {}).get("email")
    label = f"{shown} <{email}>" if isinstance(email, str) and email and email != shown else shown
    return {
        "display_value": shown,
        "id": uri,
        "label": label,
        "text": label,
        "uri": uri,
        "value": uri,
        "minerva_pid": pid,
    }


def lookup(actor: Actor, segment_id: str, q: str, *, limit: int = LIMIT_DEFAULT) -> Found:
    """Members of a live segment of the actor's org matching `q` (see the module docstring)."""
    term = clean_term(q)
    segment = usecase.get_segment(actor, segment_id)
    sid = segment.segment_id
    by, prefix = parse_term(term, actor.bucket)
    if by == "none":
        return Found(results=[], scanned=0, truncated=False, by="pid")
    fields = fieldset(segment.resource_type or "person").search_fields
    wanted = _fold(term)
    results: list[dict[str, Any]] = []
    scanned, after, more, full = 0, None, True, False
    while more and scanned < SCAN_CAP and not full:
        page, after, evaluated = store.members_page(
            sid, after=after, read=min(PAGE, SCAN_CAP - scanned), pid_prefix=prefix
        )
        scanned += evaluated
        more = after is not None
        pids = [m["minerva_pid"] for m in page if by != "exact" or m["minerva_pid"] == prefix]
        people = store.person_records(actor.org_id, pids, consistent=False) if pids else {}
        for pid in pids:
            record = people.get(pid)
            if by == "fields" and not (record and any(wanted in _fold(t) for t in _texts(record, fields))):
                continue
            if len(results) == limit:
                full = True
                break
            results.append(item(actor.bucket, pid, record))
    truncated = full or (more and scanned >= SCAN_CAP)
    return Found(results=results, scanned=scanned, truncated=truncated, by="fields" if by == "fields" else "pid")
