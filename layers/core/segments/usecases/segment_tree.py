"""Segment trees (docs/api.md#segment-trees): `parent_segment` links a segment to its parent by uri
(`/{bucket}/segment/{uid}/`). Cycles are refused on create and update by walking the new parent's
chain; the walk's reads are re-checked in the write's transaction, so two concurrent moves can't
close a cycle between them. The forest of a bucket is built here, in memory, without recursion.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from segments import errors
from segments.models import Actor, name_key
from segments.store import segments as store
from segments.store.segments import SegmentRecord

MAX_DEPTH = 32  # ancestors a new parent may have (the walk's bound)


def uri_of(bucket: str, segment_id: str) -> str:
    return f"/{bucket}/segment/{uuid.UUID(segment_id).hex}/"


def segment_id_of(bucket: str, uri: str | None) -> str | None:
    """The segment id a uri of `bucket` names, or None when it names none."""
    if not isinstance(uri, str):
        return None
    m = re.fullmatch(rf"/{re.escape(bucket)}/segment/([0-9a-f]{{32}})/", uri)
    return str(uuid.UUID(m.group(1))) if m else None


def _not_a_parent(actor: Actor, parent: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"Invalid 'parent_segment': {parent!r} is not a segment of bucket {actor.bucket}")


def parent_chain(actor: Actor, segment_id: str | None, parent: str) -> list[tuple[str, str | None]]:
    """The chain from `parent` up to its root: [(segment id, its parent_segment)], the first a live
    segment of the actor's bucket. Deleted ancestors are followed too (a restore brings their links
    back). ValidationFailed when `parent` names no live segment, when the chain meets `segment_id`
    (a cycle) or is longer than MAX_DEPTH."""
    first = segment_id_of(actor.bucket, parent)
    if first is None:
        raise _not_a_parent(actor, parent)
    if first == segment_id:
        raise errors.ValidationFailed("Invalid 'parent_segment': a segment can't be its own parent")
    chain: list[tuple[str, str | None]] = []
    current: str | None = first
    while current is not None:
        if current == segment_id:
            raise errors.ValidationFailed(
                f"Invalid 'parent_segment': {parent!r} is inside this segment's own tree; the move would make a cycle"
            )
        if len(chain) == MAX_DEPTH:
            raise errors.ValidationFailed(f"Invalid 'parent_segment': trees may nest at most {MAX_DEPTH} levels")
        record = store.get_any(actor.org_id, current)
        if record is None or (not chain and not record.live):
            if not chain:
                raise _not_a_parent(actor, parent)
            break  # a dangling link ends the chain
        link = record.parent_segment
        chain.append((current, link))
        current = segment_id_of(actor.bucket, link)
        if current is not None and any(current == sid for sid, _ in chain):
            break  # a cycle stored before cycles were refused: it does not include segment_id
    return chain


def chain_checks(actor: Actor, chain: list[tuple[str, str | None]], *, whole: bool) -> dict[str, dict[str, Any]]:
    """Transaction items that hold the walk true at commit: the parent is live and its link is
    unchanged; with `whole`, every ancestor's link too (a move: no concurrent move closes a cycle)."""
    checks: dict[str, dict[str, Any]] = {}
    for i, (sid, link) in enumerate(chain if whole else chain[:1]):
        checks[f"ancestor {i}"] = store.parent_check(actor.org_id, sid, link, live=i == 0)
    return checks


# ------------------------------------------------------------------ the forest


@dataclass
class Node:
    """A segment of a tree and its children (nodes, by name)."""

    segment: SegmentRecord
    children: list[Node] = field(default_factory=list)


def forest(bucket: str, segments: list[SegmentRecord]) -> list[Node]:
    """The bucket's trees: auxiliary segments and segments with a parent, as nested nodes, children
    by name. A segment whose parent is not live (deleted) is a root."""
    nodes: dict[str, Node] = {}
    links: dict[str, str] = {}  # node uri -> its parent's uri ("" for none)
    for s in segments:
        if s.segment_type != "auxiliary" and not s.parent_segment:
            continue
        uri = uri_of(bucket, s.segment_id)
        nodes[uri] = Node(s)
        links[uri] = s.parent_segment or ""
    roots: list[Node] = []
    for uri, node in nodes.items():
        parent = nodes.get(links[uri])
        (parent.children if parent is not None else roots).append(node)
    # A stored cycle (impossible since cycles are refused, but never loop on one): nodes no root
    # reaches become roots, their link to the cycle cut.
    reached: set[str] = set()

    def node_uri_of(node: Node) -> str:
        return uri_of(bucket, node.segment.segment_id)

    stack = list(roots)
    while stack:
        node = stack.pop()
        reached.add(node_uri_of(node))
        stack.extend(node.children)
    for node_uri, node in nodes.items():
        if node_uri not in reached:
            parent = nodes[links[node_uri]]
            parent.children = [c for c in parent.children if node_uri_of(c) != node_uri]
            roots.append(node)
            stack = [node]
            while stack:
                current = stack.pop()
                reached.add(node_uri_of(current))
                stack.extend(c for c in current.children if node_uri_of(c) not in reached)
    by_name = lambda n: (name_key(n.segment.name), n.segment.segment_id)  # noqa: E731
    roots.sort(key=by_name)
    for node in nodes.values():
        node.children.sort(key=by_name)
    return roots
