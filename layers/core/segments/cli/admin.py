"""`segments-admin`: create, revoke and list API keys; put orgs on usage plans; create system segments;
publish person events; store an org's Mailchimp credentials.

Reads the same environment as the functions (TABLE_NAME, EVENT_BUS_NAME, AWS_REGION/AWS_DEFAULT_REGION)
and honours AWS_ENDPOINT_URL, so it works against AWS and against the local stack alike. `--json`
prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from segments import auth, errors
from segments.cli import admin_events, admin_mailchimp, export, people_import
from segments.cli.args import add_json_switch
from segments.config import get_settings
from segments.store.api_keys import ApiKeyRecord


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=None if args.json else 2, sort_keys=True) if args.json else text)


def _create(args: argparse.Namespace) -> int:
    from segments.external import plans  # only the plan commands call API Gateway

    created = auth.create_api_key(args.org, args.bucket, label=args.label)
    # the org's plan: the one asked for, else the one it has, else standard; the new key names its gateway key
    org_plan = plans.set_plan(args.org, args.plan or plans.current_plan(args.org) or plans.DEFAULT_PLAN)
    data = {
        "key_id": created.key_id,
        "api_key": created.api_key,
        "org_id": created.org_id,
        "bucket": created.bucket,
        "plan": org_plan.plan,
    }
    _print(
        args,
        data,
        f"key_id:  {created.key_id}\norg_id:  {created.org_id}\nbucket:  {created.bucket}\nplan:    {org_plan.plan}\n"
        f"api_key: {created.api_key}\n\nThe key is shown only this once; only its SHA-256 hash is stored.",
    )
    return 0


def _set_plan(args: argparse.Namespace) -> int:
    from segments.external import plans

    org_plan = plans.set_plan(args.org, args.plan)
    _print(
        args,
        plans.describe(org_plan),
        f"org {org_plan.org_id} is on plan {org_plan.plan} (usage plan {org_plan.usage_plan_id}, "
        f"API Gateway key {org_plan.gateway_key_id}); the plan's limits apply from the next request",
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = auth.revoke_api_key(args.key_id)
    data = {"key_id": record.key_id, "org_id": record.org_id, "status": "revoked"}
    _print(
        args,
        data,
        f"revoked {record.key_id} (org {record.org_id}); "
        "cached authorizations expire within the authorizer TTL (≤ 300 s)",
    )
    return 0


def _key_view(key: ApiKeyRecord) -> dict[str, Any]:
    """A key as listed, field by field (never its hash); what the key does not hold is left out."""
    fields = {
        "key_id": key.key_id,
        "org_id": key.org_id,
        "bucket": key.bucket,
        "label": key.label,
        "status": key.status,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _list(args: argparse.Namespace) -> int:
    keys = [_key_view(k) for k in auth.list_api_keys(args.org)]
    rows = [("KEY_ID", "STATUS", "BUCKET", "CREATED_AT", "LABEL")]
    rows += [(k["key_id"], k["status"], k["bucket"], k["created_at"], k.get("label") or "") for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]).rstrip() for row in rows]
    _print(args, keys, "\n".join(lines) if keys else f"no keys for org {args.org}")
    return 0


def _create_system_segment(args: argparse.Namespace) -> int:
    segment = auth.create_system_segment(args.org, args.bucket, args.name, description=args.description)
    data = {
        "segment_id": segment.segment_id,
        "org_id": segment.org_id,
        "bucket": segment.bucket,
        "name": segment.name,
        "system_segment": True,
    }
    _print(
        args,
        data,
        f"segment_id: {segment.segment_id}\norg_id:     {segment.org_id}\n"
        f"bucket:     {segment.bucket}\nname:       {segment.name}\n\n"
        "A system segment can't be renamed or deleted through the API.",
    )
    return 0


def _read_input(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise admin_events.EventInputError(f"cannot read {source}: {exc}") from None


def _publish(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from segments import aws  # only this command needs EventBridge and SQS clients

    bus: str = args.bus or get_settings().event_bus_name or ""
    if not args.queue and not bus:
        raise admin_events.EventInputError("no event bus: set EVENT_BUS_NAME or pass --bus NAME (or --queue URL)")
    events = admin_events.parse(_read_input(args.file))  # everything checked before anything is sent
    older = (
        admin_events.older_profiles([(e.line, e.parsed) for e in events if e.parsed is not None])
        if args.check
        else None
    )
    try:
        if args.queue:
            target = {"queue": args.queue}
            outcome = admin_events.send_to_queue(events, args.queue, aws.sqs())
        else:
            target = {"bus": bus}
            outcome = admin_events.publish_to_bus(events, bus, aws.events())
    except (BotoCoreError, ClientError) as exc:
        raise admin_events.EventInputError(f"nothing more could be sent: {exc}") from None
    where = f"queue {args.queue}" if args.queue else f"bus {bus}"
    data: dict[str, Any] = {"put": outcome.put, "failed": len(outcome.failed), **target}
    notes: list[str] = []
    if older is not None:
        data["older"] = [o.as_dict() for o in older]
        notes = admin_events.describe_older(older)
    elif any(e.body.get("type") == "profile" for e in events):
        notes = [f"({admin_events.OLDER_HINT})"]
    if outcome.failed:
        data["failures"] = [{"line": line, "code": code, "message": msg} for line, code, msg in outcome.failed]
        _print(args, data, "\n".join([f"put {outcome.put} of {len(events)} event(s) on {where}", *notes]))
        print(
            f"segments-admin: {len(outcome.failed)} event(s) not put: {admin_events.describe_failures(outcome)}",
            file=sys.stderr,
        )
        return 2
    _print(args, data, "\n".join([f"put {outcome.put} event(s) on {where}", *notes]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segments-admin", description="Operate Segments: API keys, system segments, person events."
    )
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("create-api-key", help="mint a key for an org and bucket (printed once)")
    c.add_argument("--org", required=True)
    c.add_argument("--bucket", required=True, help="the org's handle, ^[a-z0-9][a-z0-9-]{1,62}$")
    c.add_argument("--label", default=None)
    c.add_argument(
        "--plan",
        choices=("standard", "pro"),
        default=None,
        help="the org's usage plan (default: its own, else standard)",
    )
    add_json_switch(c)
    c.set_defaults(func=_create)

    sp = sub.add_parser("set-plan", help="put an org on a usage plan (its rate, burst and daily quota)")
    sp.add_argument("--org", required=True)
    sp.add_argument("--plan", required=True, choices=("standard", "pro"))
    add_json_switch(sp)
    sp.set_defaults(func=_set_plan)

    r = sub.add_parser("revoke-api-key", help="revoke a key by its id")
    r.add_argument("key_id")
    add_json_switch(r)
    r.set_defaults(func=_revoke)

    ls = sub.add_parser("list-api-keys", help="an org's keys (never the keys themselves)")
    ls.add_argument("--org", required=True)
    add_json_switch(ls)
    ls.set_defaults(func=_list)

    s = sub.add_parser("create-system-segment", help="create a system segment (API callers can't edit or delete it)")
    s.add_argument("--org", required=True)
    s.add_argument("--bucket", required=True, help="the org's handle")
    s.add_argument("--name", required=True)
    s.add_argument("--description", default=None)
    add_json_switch(s)
    s.set_defaults(func=_create_system_segment)

    e = sub.add_parser(
        "publish-event",
        help="put person events (one JSON object, or JSON lines) on the event bus, or on the queue",
        description="Put person events (docs/api.md#person-events) on the bus as source segments.people, detail-type "
        "Person Event, in PutEvents batches of 10; or, with --queue, as bare messages on the queue. "
        "Every line is checked before anything is sent.",
    )
    e.add_argument("file", metavar="FILE", help="a file of events, or - for standard input")
    target = e.add_mutually_exclusive_group()
    target.add_argument("--bus", help="event bus name or ARN (default: EVENT_BUS_NAME)")
    target.add_argument("--queue", metavar="URL", help="send straight to this SQS queue URL instead")
    e.add_argument(
        "--check",
        action="store_true",
        help="first read the people registry (TABLE_NAME) and report the profile events older than the "
        "profile stored for their person: the consumer ignores those (it keeps the newer one)",
    )
    add_json_switch(e)
    e.set_defaults(func=_publish)

    people_import.register(sub)
    export.register(sub)
    admin_mailchimp.register(sub)
    return p


# What to set when boto3 cannot start or reach AWS (one line instead of a traceback).
LOCAL_ENV = (
    "against the local stack: AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=x "
    "AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 (README: API keys)"
)


def _aws_problem(exc: Exception) -> str:
    """One line for an AWS environment or connection problem."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoRegionError):
        return f"no AWS region: set AWS_DEFAULT_REGION (or AWS_REGION); {LOCAL_ENV}"
    if isinstance(exc, NoCredentialsError):
        return f"no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); {LOCAL_ENV}"
    if isinstance(exc, EndpointConnectionError):
        return f"{exc} (is the local stack running? AWS_ENDPOINT_URL names where to go)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        hint = " (TABLE_NAME names the table)" if error.get("Code") == "ResourceNotFoundException" else ""
        return f"{error.get('Code', 'error')}: {error.get('Message', exc)}{hint}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = parser().parse_args(argv)
    get_settings.cache_clear()  # one command, one reading of the environment (as a process of its own)
    try:
        return int(args.func(args))
    except errors.DomainError as exc:
        # the store turns an unanswered call into Retryable: name what did not answer, and where
        cause = exc.__cause__
        problem = _aws_problem(cause) if isinstance(cause, BotoCoreError | ClientError) else exc.message
        print(f"segments-admin: {problem}", file=sys.stderr)
        return 2
    except admin_events.EventInputError as exc:
        print(f"segments-admin: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"segments-admin: {_aws_problem(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
