"""`segments-admin import-people --org ORG FILE.jsonl`: person records into an org's people
registry, as `profile` events through the person-events queue (docs/api.md#person-events), so that they take the
same path as any producer's: validation, the registry, real-time rule membership.

Each line of the file is a JSON object `{"minerva_pid": "p-...", ...attributes}`. A line is
checked as the consumer will check it (the event's validation in `person_events`); invalid lines
are reported by line number and reason and not sent. Events go 10 a SendMessageBatch call.

A re-run of the same file is idempotent: each event's `event_id` is a digest of the org, the PID
and the record's content, and `observed_at` is the file's modification time (or `--observed-at`),
so the same file sends the same events, and a profile that sets what is stored changes nothing.

A record whose person already holds a newer profile (`profile_observed_at`) is ignored by the
consumer. `--check` reads the registry first (TABLE_NAME) and reports those records; the queue
gives the sender no verdict, so without it only the consumer's log says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import batched
from pathlib import Path
from typing import Any, TextIO

from segments import queues
from segments.cli import admin_events
from segments.cli.args import add_json_switch, bad_org
from segments.config import get_settings
from segments.events.person_events import InvalidEvent, PersonEvent, parse_message
from segments.timefmt import iso

BATCH_BYTES_MAX = 256 * 1024  # SendMessageBatch: all messages of one call together
PROGRESS_EVERY = 1_000
CHECK_CHUNK = 1_000  # records read from the registry at a time by --check


@dataclass
class Report:
    read: int = 0
    valid: int = 0
    sent: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)  # {line, reason}
    failed: int = 0  # valid events the queue did not take


def event_id(org_id: str, pid: str, record: dict[str, Any]) -> str:
    content = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256("\n".join((org_id, pid, content)).encode("utf-8", "surrogatepass")).hexdigest()
    return f"imp-{digest[:40]}"


def event_of(org_id: str, record: Any, *, observed_at: str) -> dict[str, Any]:
    """The profile event of one record (not validated yet)."""
    if not isinstance(record, dict):
        raise InvalidEvent("a line must be a JSON object")
    pid = record.get("minerva_pid")
    if not isinstance(pid, str):
        raise InvalidEvent("minerva_pid is missing or not a string")
    attributes = {k: v for k, v in record.items() if k != "minerva_pid"}
    return {
        "event_id": event_id(org_id, pid, attributes),
        "type": "profile",
        "minerva_pid": pid,
        "observed_at": observed_at,
        "org_id": org_id,
        "data": {"attributes": attributes},
    }


def events(org_id: str, lines: Iterable[str], *, observed_at: str, report: Report) -> Iterator[str]:
    """The bodies of the valid lines' events; invalid lines go to the report."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.read += 1
        try:
            body = json.dumps(event_of(org_id, json.loads(line), observed_at=observed_at), ensure_ascii=False)
            parse_message(body)
        except InvalidEvent as exc:
            report.invalid.append({"line": number, "reason": exc.reason})
            continue
        except ValueError:
            report.invalid.append({"line": number, "reason": "not JSON"})
            continue
        report.valid += 1
        yield body


def parsed_events(org_id: str, lines: Iterable[str], *, observed_at: str) -> Iterator[tuple[int, PersonEvent]]:
    """(line number, event as the consumer reads it) of the valid lines (--check)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_message(json.dumps(event_of(org_id, json.loads(line), observed_at=observed_at)))
        except (InvalidEvent, ValueError):  # reported by the import itself
            continue


def older_than_stored(org_id: str, lines: Iterable[str], *, observed_at: str) -> list[admin_events.Older]:
    """The records whose event the consumer will ignore: their person holds a newer profile."""
    older: list[admin_events.Older] = []
    for chunk in batched(parsed_events(org_id, lines, observed_at=observed_at), CHECK_CHUNK, strict=False):
        older += admin_events.older_profiles(chunk)
    return older


def _batches(bodies: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for body in bodies:
        n = len(body.encode("utf-8"))
        if batch and (len(batch) == queues.SEND_BATCH_MAX or size + n > BATCH_BYTES_MAX):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += n
    if batch:
        yield batch


def import_people(
    org_id: str, lines: Iterable[str], *, queue_url: str, observed_at: str, progress: TextIO | None = None
) -> Report:
    report = Report()
    shown = 0
    for batch in _batches(events(org_id, lines, observed_at=observed_at, report=report)):
        result = queues.send_batch(queue_url, [(str(i), body) for i, body in enumerate(batch)])
        report.sent += result.sent
        report.failed += len(result.failed)
        if progress is not None and report.sent - shown >= PROGRESS_EVERY:
            shown = report.sent
            print(
                f"sent {report.sent:,} of {report.read:,} read ({len(report.invalid):,} invalid)",
                file=progress,
                flush=True,
            )
    return report


# ------------------------------------------------------------------ the subcommand


def register(sub: Any) -> None:
    """Add `import-people` to segments-admin's subcommands."""
    p = sub.add_parser("import-people", help="send a JSON-lines file of person records as profile events")
    p.add_argument("--org", required=True)
    p.add_argument("file", type=Path, help='JSON lines: {"minerva_pid": ..., ...attributes}')
    p.add_argument("--queue", default=None, help="the person-events queue URL (default: $PERSON_EVENTS_QUEUE_URL)")
    p.add_argument(
        "--observed-at", default=None, help="the events' observed_at (ISO 8601); default: the file's modification time"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="first read the people registry (TABLE_NAME) and report the records whose profile is older than "
        "the one stored for their person: the consumer ignores those (it keeps the newer one)",
    )
    add_json_switch(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bad_org(args.org):
        return 2
    queue_url = args.queue or get_settings().person_events_queue_url
    if not queue_url:
        print("segments-admin: give --queue or set PERSON_EVENTS_QUEUE_URL", file=sys.stderr)
        return 2
    observed_at = args.observed_at or iso(datetime.fromtimestamp(args.file.stat().st_mtime, UTC))
    older = None
    if args.check:  # before sending: what the registry holds now, not what this import is about to write
        with args.file.open(encoding="utf-8") as lines:
            older = older_than_stored(args.org, lines, observed_at=observed_at)
    with args.file.open(encoding="utf-8") as lines:
        report = import_people(
            args.org, lines, queue_url=queue_url, observed_at=observed_at, progress=None if args.json else sys.stderr
        )
    if args.json:
        extra = {} if older is None else {"older": [o.as_dict() for o in older]}
        print(json.dumps({"org_id": args.org, **asdict(report), **extra}, sort_keys=True))
    else:
        print(
            f"read {report.read:,} records: {report.sent:,} sent, {len(report.invalid):,} invalid, "
            f"{report.failed:,} not taken by the queue"
        )
        for bad in report.invalid[:20]:
            print(f"  line {bad['line']}: {bad['reason']}")
        if len(report.invalid) > 20:
            print(f"  ... and {len(report.invalid) - 20:,} more")
        print("\n".join(admin_events.describe_older(older) if older is not None else [f"({admin_events.OLDER_HINT})"]))
    return 1 if report.failed else 0
