"""`signals-late-joiners`: adding 10,000 PIDs, 1 % of whom already have a signal. The request's own
DynamoDB and EventBridge calls against the same add in a table without signals (the members-calls
measurement, same run); SignalFeedFunction's DynamoDB calls on the add's ledger INSERTs; and the
delay from the add's response to the late joiners' signals being readable, through the local stack
(docs/performance.md, "Signals").
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tools.bench import core
from tools.bench.calls import ServiceCalls
from tools.bench.harness import (
    N_PIDS,
    Options,
    Rows,
    add_members,
    benchmark,
    invoke,
    load_handler,
    new_segment,
    person_event,
    pids,
    quiet,
    say,
    stream_inserts,
)
from tools.bench.moto import moto_at_scale

SHARE = 100  # one PID in SHARE has a signal (1 %)
POLL = 0.05  # seconds between reads of the signals API


def _signals(members: list[str]) -> list[dict[str, Any]]:
    return [
        person_event("death", pid, f"evt-late-{n:05d}", "2024-01-15T10:30:45.123456Z")
        for n, pid in enumerate(members[::SHARE])
    ]


def request_and_feed_calls() -> tuple[Rows, bool]:
    """The add's calls without and with signals stored, and the feed function's calls (in-process moto)."""
    members = pids(N_PIDS, prefix="late")
    with moto_at_scale(), ServiceCalls("dynamodb", "events") as counted:
        with quiet():
            before_segment = new_segment("late joiners, before signals")
        counted.clear()
        add_members(before_segment, members)
        before = counted.by_operation()

        with quiet():
            for detail in _signals(members):
                core.ingest_event(detail)
            segment_id = new_segment("late joiners")
        counted.clear()
        results = add_members(segment_id, members)
        after = counted.by_operation()
        assert results["n_added"] == N_PIDS

        ledger = core.ledger_items(segment_id)
        counted.clear()
        answer = invoke(load_handler("SignalFeedFunction"), stream_inserts(ledger))
        feed_calls = counted.by_operation()
        entries = core.feed_count(segment_id)
    assert not answer.get("batchItemFailures"), answer
    n_before, n_after = sum(before.values()), sum(after.values())
    extra = (n_after - n_before) / n_before
    met = extra <= 0.01
    with_signals = N_PIDS // SHARE
    say(
        f"(a) the add's own calls, 10,000 new PIDs through AddMembersFunction (in-process moto), "
        f"{with_signals} of them with a signal"
    )
    say(f"    before signals (no signal stored): {before}")
    say(f"    with signals stored:               {after}")
    say(
        f"    {n_after - n_before:+d} calls ({extra:+.1%}); target at most +1 %, no EventBridge call: "
        f"{'met' if met and not any(op.startswith('events:') for op in after) else 'NOT met'}"
    )
    say(
        f"(b) SignalFeedFunction on the add's {len(ledger)} ledger INSERTs (one stream batch): {feed_calls}; "
        f"{entries} feed entries written for {with_signals} late joiners with a signal"
    )
    fmt = ", ".join
    return [
        ("late joiners: the add's calls, no signals stored", fmt(f"{n} {op}" for op, n in before.items())),
        (
            f"late joiners: the add's calls, {with_signals} of 10,000 with a signal",
            fmt(f"{n} {op}" for op, n in after.items()),
        ),
        ("late joiners: request path target (<= +1 %)", f"{extra:+.1%}, {'met' if met else 'NOT met'}"),
        (
            f"late joiners: SignalFeedFunction, {len(ledger)} ledger INSERTs",
            fmt(f"{n} {op}" for op, n in feed_calls.items()) + f"; {entries} feed entries",
        ),
    ], met


def _http(url: str, method: str = "GET", body: Any = None, key: str = "") -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"x-api-key": key, "content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:  # nosec B310  # an http:// URL of our own local server
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def delay_through_local_stack() -> Rows:
    """Add through the HTTP API of a local stack on free ports; read the signals API until the late
    joiners' signals are served."""
    from tools.local_stack import LocalStack

    members = pids(N_PIDS, prefix="late")
    expected = len(members[::SHARE])
    with LocalStack(port=0, moto_port=0) as stack:
        info = stack.info
        assert info is not None and info.demo_key
        base, key = info.api_url, info.demo_key
        with quiet():
            for detail in _signals(members):  # stored through the core's ingest, into the stack's table
                core.ingest_event(detail)
        status, created = _http(f"{base}/v2/segments/create", "POST", {"name": "late joiners"}, key)
        assert status == 200, created
        segment_id = created["segment_id"]
        deaths = f"{base}/v2/segments/signals/deaths?segment_id={segment_id}&limit=1000"
        started = time.perf_counter()
        status, added = _http(
            f"{base}/v2/segments/members/add", "POST", {"segment_id": segment_id, "minerva_pids": members}, key
        )
        answered = time.perf_counter()
        assert status == 200, added
        served, reads = 0, 0
        while time.perf_counter() - answered < 120:
            status, page = _http(deaths, key=key)
            reads += 1
            served = len(page.get("results") or []) if status == 200 else 0
            if served >= expected:
                break
            time.sleep(POLL)
        seen = time.perf_counter()
    request_s, delay = answered - started, seen - answered
    say(
        f"(c) through the local stack (HTTP API on a free loopback port, the stream pollers): add answered in "
        f"{request_s:.2f} s; the {served}/{expected} late joiners' deaths readable {delay:.2f} s after the answer "
        f"({reads} reads)"
    )
    say(
        "    the stream pollers read the add's 10,000 member INSERTs too (each consumer; its filter drops them) "
        "through moto's GetRecords, 1,000 a call; the 0.25 s idle wait and the 1 s batching window are a small part"
    )
    return [
        (
            "late joiners: delay, add answered -> signals readable (local stack)",
            f"{delay:.2f} s ({served}/{expected} signals; the add itself {request_s:.2f} s)",
        ),
    ]


@benchmark("signals-late-joiners", "add 10,000 PIDs: the request's calls <= +1 % of before signals; feed work async")
def signals_late_joiners(opts: Options) -> dict[str, str]:
    rows, _ = request_and_feed_calls()
    if "members-calls" in opts.results:
        say(f"    members-calls, same run: {opts.results['members-calls']}")
    try:
        rows += delay_through_local_stack()
    except Exception as exc:  # the call figures stand without the delay
        say(f"(c) local stack not measured: {type(exc).__name__}: {exc}")
        rows.append(("late joiners: delay (local stack)", f"not measured: {type(exc).__name__}"))
    return dict(rows)
