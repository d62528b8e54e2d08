"""`segments-admin set-mailchimp`: store an org's Mailchimp credentials (API key, audience id, the status
new contacts get) as its Secrets Manager secret, `{MAILCHIMP_SECRET_PREFIX}{org}`. The key is never
printed, logged, nor written to the table; what is printed names the secret, the audience and the
API's base URL (from the key's data centre, or MAILCHIMP_BASE_URL)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from segments import errors
from segments.cli.args import add_json_switch, bad_org
from segments.mailchimp import credentials


def register(sub: Any) -> None:
    """Add `set-mailchimp` to segments-admin's subcommands."""
    p = sub.add_parser(
        "set-mailchimp",
        help="store an org's Mailchimp credentials (Secrets Manager) for the audience sync",
        description="Segments with mailchimp_sync true are then kept in a static segment (tag) of their name in "
        "this audience. The key's data centre suffix (-us6) gives the API's address.",
    )
    p.add_argument("--org", required=True)
    p.add_argument("--api-key", required=True, help="a Mailchimp API key, ending with its data centre (-us6)")
    p.add_argument("--audience-id", required=True, help="the audience (list) id")
    p.add_argument(
        "--status-if-new",
        choices=credentials.STATUSES,
        default="transactional",
        help="the status of contacts the sync creates (default transactional: no marketing without consent; "
        "subscribed when the org holds their consent). Existing contacts keep theirs.",
    )
    add_json_switch(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bad_org(args.org):
        return 2
    creds = credentials.Credentials(args.api_key.strip(), args.audience_id.strip(), args.status_if_new)
    if not creds.audience_id:
        print("segments-admin: --audience-id must not be empty", file=sys.stderr)
        return 2
    try:
        base_url = creds.base_url
    except errors.ValidationFailed as exc:
        print(f"segments-admin: {exc.message}", file=sys.stderr)
        return 2
    name = credentials.save(args.org, creds)
    data = {"org_id": args.org, "secret": name, "audience_id": creds.audience_id, "base_url": base_url}
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        where = f"audience {creds.audience_id}, {base_url}"
        print(f"stored the Mailchimp credentials of org {args.org} in secret {name} ({where})")
    return 0
