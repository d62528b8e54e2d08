"""`mailchimp`: the Mailchimp audience sync of a 10,000-member segment after 100 of its members
changed (50 left, 50 joined), and after 1,000: the Mailchimp requests the sync makes and its
DynamoDB calls, through MailchimpSyncFunction's handler against in-process moto and the local
Mailchimp server (tools/mailchimp_server.py) (docs/performance.md, "Mailchimp sync").

The segment is first filled (10,000 PIDs through AddMembersFunction) and pushed by a full sync, as
an org turning the sync on would; the full sync's figures are printed too. Its position is the
ledger's end, so the incremental sync reads only the entries written after it.
"""

from __future__ import annotations

import json
from typing import Any

from tools import cfn
from tools.bench import core
from tools.bench.calls import ServiceCalls
from tools.bench.harness import (
    N_PIDS,
    ORG,
    TEMPLATE,
    Options,
    Rows,
    add_members,
    benchmark,
    invoke,
    load_handler,
    pids,
    quiet,
    say,
    sqs_batch,
)
from tools.bench.moto import moto_at_scale

AUDIENCE, KEY = "aud-bench", "bench-us6"
READS = ("GetItem", "Query", "BatchGetItem")


def _people(members: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(pid, {"email": f"{pid}@example.org", "first_name": "F", "last_name": pid}) for pid in members]


def _run(handler: Any, body: dict[str, Any]) -> None:
    answer = invoke(handler, sqs_batch([json.dumps(body)]))
    if answer.get("batchItemFailures"):
        raise RuntimeError(f"MailchimpSyncFunction failed: {answer}")


def _figures(counted: ServiceCalls, server: Any, before: int) -> tuple[dict[str, int], int, list[str]]:
    ops = counted.by_operation()
    reads = {op: n for op, n in ops.items() if op in READS}
    return reads, len(server.requests) - before, [f"{m} {p}" for m, p in server.requests[before:]]


def _change(org: str, bucket: str, segment_id: str, n: int, round_: int) -> None:
    """n members change: n/2 current members leave, n/2 new people join."""
    leaving = pids(N_PIDS)[round_ * n : round_ * n + n // 2]
    joining = pids(n - n // 2, prefix=f"new{round_}x")
    core.put_people(org, _people(joining))
    core.remove_members(org, bucket, segment_id, leaving)
    added = add_members(segment_id, joining)
    if added["n_added"] != len(joining):
        raise RuntimeError(f"the add did not add every PID: {added}")


@benchmark("mailchimp", "sync of a 10,000-member segment after 100 changed: <= 2 Mailchimp batches, reads O(changes)")
def mailchimp(opts: Options) -> dict[str, str]:
    from tools.mailchimp_server import MailchimpServer

    rows: Rows = []
    with MailchimpServer(audiences={AUDIENCE: KEY}, stop_after=1800) as server, moto_at_scale():
        import boto3

        queues = cfn.create_queues(boto3.client("sqs", region_name="us-east-1"), cfn.load_template(TEMPLATE))
        env = {"MAILCHIMP_BASE_URL": server.base_url, "MAILCHIMP_SYNC_QUEUE_URL": queues["MailchimpSyncQueue"]}
        import os

        os.environ.update(env)
        core.reset_core()
        org, bucket = ORG["org_id"], ORG["bucket"]
        with quiet():
            core.put_people(org, _people(pids(N_PIDS)))
            segment_id = core.mailchimp_setup(org, bucket, "Bench newsletter", KEY, AUDIENCE)
            add_members(segment_id, pids(N_PIDS))
        handler = load_handler("MailchimpSyncFunction")
        with ServiceCalls("dynamodb", "secretsmanager") as counted:
            core.reset_core()  # clients made from here on are counted
            job = core.mailchimp_full_sync(org, bucket, segment_id)
            counted.clear()
            before = len(server.requests)
            with quiet():
                _run(handler, {"kind": "full", "org_id": org, "job_id": job})
            reads, requests, _ = _figures(counted, server, before)
            held = len(server.segment_members(AUDIENCE, "Bench newsletter"))
            say(
                f"full sync of {N_PIDS:,} members: {requests} Mailchimp requests, DynamoDB reads {reads}; "
                f"{held:,} in the Mailchimp segment"
            )
            rows.append(("full sync, 10,000 members: Mailchimp requests", str(requests)))
            rows.append(
                ("full sync, 10,000 members: DynamoDB reads", ", ".join(f"{n} {op}" for op, n in reads.items()))
            )

            for round_, n in enumerate((100, 1_000)):
                with quiet():
                    _change(org, bucket, segment_id, n, round_)
                counted.clear()
                before = len(server.requests)
                with quiet():
                    _run(handler, {"kind": "sync", "org_id": org, "segment_id": segment_id})
                reads, requests, made = _figures(counted, server, before)
                state = core.mailchimp_state(org, segment_id)
                held = len(server.segment_members(AUDIENCE, "Bench newsletter"))
                batches = sum(1 for r in made if r.startswith("POST") and "/segments/" in r)
                met = n != 100 or (batches <= 2 and requests <= 4)
                verdict = "" if n != 100 else "; target met" if met else "; target NOT met"
                say(
                    f"{n:,} changed (half left, half joined): {requests} Mailchimp requests ({', '.join(made)}), "
                    f"{batches} segment batch(es); DynamoDB reads {reads}; last sync {state.get('last_sync')}; "
                    f"{held:,} in the Mailchimp segment{verdict}"
                )
                rows.append(
                    (
                        f"incremental sync, {n:,} of 10,000 changed: Mailchimp requests",
                        f"{requests} ({batches} segment batch(es))",
                    )
                )
                rows.append(
                    (
                        f"incremental sync, {n:,} of 10,000 changed: DynamoDB reads",
                        ", ".join(f"{k} {op}" for op, k in reads.items()),
                    )
                )
    return dict(rows)
