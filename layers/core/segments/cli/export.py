"""`segments-admin export`: run an export job here, chunk after chunk (the same job ExportFunction runs
off ExportQueue), and print the file's presigned URL."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Mapping
from typing import Any

from segments.cli.args import add_json_switch
from segments.models import Actor, check_org_and_bucket


def register(sub: Any) -> None:
    """Add `export` to segments-admin's subcommands."""
    p = sub.add_parser("export", help="export a segment to a file on S3 (EXPORTS_BUCKET) and print its URL")
    p.add_argument("--org", required=True)
    p.add_argument("--segment", required=True, help="the segment_id (or its SheepCRM uid)")
    p.add_argument("--format", required=True, choices=["csv", "jsonl", "xlsx", "pdf"])
    p.add_argument("--fields", default="", help="person-record fields by dotted path, comma-separated")
    p.add_argument("--fieldset", default=None, help="a fieldset uid: its fields come first")
    p.add_argument("--bucket", default="-", help="the org's bucket (the uri column of --surface sheep)")
    p.add_argument("--surface", choices=["minerva", "sheep"], default="minerva", help="whose identity columns")
    add_json_switch(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segments.observability import logger
    from segments.usecases import exports

    logger.setLevel("WARNING")  # stdout holds the URL (or --json) alone: the job's progress lines are INFO
    try:
        check_org_and_bucket(args.org)
        segment_id = str(uuid.UUID(args.segment))
    except ValueError as exc:
        print(f"segments-admin: {exc if 'org' in str(exc) else 'segment must be a segment_id or uid'}", file=sys.stderr)
        return 2
    who = Actor(org_id=args.org, bucket=args.bucket, reason="admin", request_id="req_" + uuid.uuid4().hex)
    pending: list[Mapping[str, Any]] = []
    job = exports.start(
        who,
        segment_id,
        fmt=args.format,
        fields=[f.strip() for f in args.fields.split(",") if f.strip()],
        fieldset_id=args.fieldset,
        surface=args.surface,
        send=pending.append,
    )
    while pending:
        exports.process(pending.pop(0), send=pending.append)
    done = exports.get_job(who, job["export_id"])
    data = {
        "export_id": done["export_id"],
        "status": done["status"],
        "rows": int(done.get("rows") or 0),
        "size_bytes": done.get("size_bytes"),
        **exports.link_fields(done),
        "error": done.get("error"),
    }
    if getattr(args, "json", False):
        print(json.dumps(data))
    elif data["url"]:
        print(data["url"])
    else:
        print(f"segments-admin: export {done['export_id']} {done['status']}: {done.get('error')}", file=sys.stderr)
    return 0 if data["url"] else 2
