"""`segments-admin`: create, revoke and list API keys; create system segments.

Reads the same environment as the functions (TABLE_NAME, AWS_REGION/AWS_DEFAULT_REGION) and honours
AWS_ENDPOINT_URL, so it works against AWS and against the local stack alike. `--json` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from segments import auth, errors, people_import


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=None if args.json else 2, sort_keys=True) if args.json else text)


def _create(args: argparse.Namespace) -> int:
    created = auth.create_api_key(args.org, args.bucket, label=args.label)
    data = {"key_id": created.key_id, "api_key": created.api_key, "org_id": created.org_id, "bucket": created.bucket}
    _print(
        args,
        data,
        f"key_id:  {created.key_id}\norg_id:  {created.org_id}\nbucket:  {created.bucket}\n"
        f"api_key: {created.api_key}\n\nThe key is shown only this once; only its SHA-256 hash is stored.",
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = auth.revoke_api_key(args.key_id)
    data = {"key_id": record["key_id"], "org_id": record["org_id"], "status": "revoked"}
    _print(args, data, f"revoked {record['key_id']} (org {record['org_id']}); "
                       "cached authorizations expire within the authorizer TTL (≤ 300 s)")
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = auth.list_api_keys(args.org)
    lines = [f"{k['key_id']}  {k['status']:<8} {k['bucket']:<20} {k['created_at']}  {k.get('label') or ''}"
             for k in keys]
    _print(args, keys, "\n".join(lines) if lines else f"no keys for org {args.org}")
    return 0


def _create_system_segment(args: argparse.Namespace) -> int:
    segment = auth.create_system_segment(args.org, args.bucket, args.name, description=args.description)
    data = {"segment_id": segment.segment_id, "org_id": segment.org_id, "bucket": segment.bucket,
            "name": segment.name, "system_segment": True}
    _print(args, data, f"segment_id: {segment.segment_id}\norg_id:     {segment.org_id}\n"
                       f"bucket:     {segment.bucket}\nname:       {segment.name}\n\n"
                       "A system segment can't be renamed or deleted through the API.")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segments-admin", description="Operate Segments: API keys, system segments.")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("create-api-key", help="mint a key for an org and bucket (printed once)")
    c.add_argument("--org", required=True)
    c.add_argument("--bucket", required=True, help="the org's handle, ^[a-z0-9][a-z0-9-]{1,62}$")
    c.add_argument("--label", default=None)
    c.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    c.set_defaults(func=_create)

    r = sub.add_parser("revoke-api-key", help="revoke a key by its id")
    r.add_argument("key_id")
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    r.set_defaults(func=_revoke)

    ls = sub.add_parser("list-api-keys", help="an org's keys (never the keys themselves)")
    ls.add_argument("--org", required=True)
    ls.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    ls.set_defaults(func=_list)

    s = sub.add_parser("create-system-segment", help="create a system segment (API callers can't edit or delete it)")
    s.add_argument("--org", required=True)
    s.add_argument("--bucket", required=True, help="the org's handle")
    s.add_argument("--name", required=True)
    s.add_argument("--description", default=None)
    s.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    s.set_defaults(func=_create_system_segment)

    people_import.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except errors.DomainError as exc:
        print(f"segments-admin: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
