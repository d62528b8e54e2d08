"""`webhooks`: segment events through the whole webhook path of the local stack (bus -> rule ->
WebhookEventsQueue -> WebhookFanoutFunction -> WebhookDeliveryQueue -> WebhookDeliveryFunction ->
POST to a receiver on 127.0.0.1), as `python -m tools.local_stack` runs it (docs/performance.md,
"Webhooks").

1. Fan-out (after the isolation phase): EVENTS `Segment Signal Detected` events spread over
   ORGS orgs that hold ENDPOINTS endpoints between them (each event goes to its org's
   ENDPOINTS / ORGS endpoints): deliveries/s, the functions' DynamoDB, SQS and KMS calls per
   delivery (the event source pollers' own ReceiveMessage/DeleteMessage are Lambda's, not
   counted), and the delay from PutEvents (the publisher's put) to the POST's arrival, median
   and p99.
2. Isolation (run first, on the fresh stack): a healthy org's events alone (ISOLATION_RATE a
   second), then the same number again interleaved with as many events of another org whose
   endpoint hangs: the healthy org's p99 delay with the hang over without it (target: at most
   2). WEBHOOK_TIMEOUT_SECONDS is HANG_TIMEOUT here (10 s in the template).

Sizes: `python -m tools.bench webhooks --events N --endpoints N --orgs N` (or WEBHOOKS_BENCH_EVENTS,
_ENDPOINTS, _ORGS); the issue's figure is 10,000 events x 100 endpoints of 10 orgs, which takes far
longer than a shared 2-core machine allows: the defaults are smaller and printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from tools.bench import core
from tools.bench.calls import ServiceCalls
from tools.bench.harness import Options, benchmark, quiet, say

DEFAULTS = {"events": 1_000, "endpoints": 100, "orgs": 10}
ISOLATION_EVENTS = 150
ISOLATION_RATE = 5.0  # events/s of each org in the isolation phase (a steady flow, not a backlog)
HANG_TIMEOUT = 2
WAIT_LIMIT = 1_800  # seconds a phase may take before the benchmark gives up


def sizes(opts: Options) -> dict[str, int]:
    given = getattr(opts, "sizes", {}) or {}
    return {
        name: int(given.get(name) or os.environ.get(f"WEBHOOKS_BENCH_{name.upper()}", default))
        for name, default in DEFAULTS.items()
    }


class Receiver:
    """Records the arrival of every POST (by its `webhook-id`) and the event's put time it carries;
    a path starting with /hang never answers (until the receiver stops)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[str, float, float]]] = {}  # path -> (webhook-id, put_at, arrived)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrived = time.time()
                put_at = float(json.loads(body)["data"]["signal"]["bench_put_at"])
                with owner.lock:
                    owner.arrivals.setdefault(self.path, []).append((self.headers["webhook-id"], put_at, arrived))
                if self.path.startswith("/hang"):
                    owner.stopping.wait(60)
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def count(self, prefix: str = "/") -> int:
        with self.lock:
            return sum(len(v) for k, v in self.arrivals.items() if k.startswith(prefix))

    def delays(self, prefix: str) -> list[float]:
        with self.lock:
            return [arrived - put for k, v in self.arrivals.items() if k.startswith(prefix) for _, put, arrived in v]

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def register(api: str, key: str, url: str) -> None:
    body = json.dumps({"url": url, "events": ["segment.signal.detected"]}).encode()
    request = urllib.request.Request(
        f"{api}/v2/webhooks", data=body, method="POST", headers={"x-api-key": key, "content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # nosec B310  # the local stack's http URL
        assert answer.status == 201


def put_events(events: Any, orgs: list[str], count: int, tag: str, rate: float | None = None) -> None:
    """`count` deaths, the orgs in turn, onto the bus (PutEvents, 10 a call, or one at a time at `rate`
    events/s); each carries its put time."""
    step = 1 if rate else 10
    started = time.monotonic()
    for start in range(0, count, step):
        if rate:
            time.sleep(max(0.0, started + start / rate - time.monotonic()))
        entries = []
        for n in range(start, min(count, start + step)):
            org = orgs[n % len(orgs)]
            detail = {
                "event_id": f"sig_{tag}_{uuid.uuid4().hex}",
                "segment_id": str(uuid.UUID(int=n)),
                "org_id": org,
                "minerva_pid": f"p-bench{n}",
                "signal_type": "death",
                "signal": {"minerva_pid": f"p-bench{n}", "bench_put_at": time.time()},
            }
            entries.append(
                {
                    "Source": "segments",
                    "DetailType": "Segment Signal Detected",
                    "EventBusName": "SegmentsBus",
                    "Detail": json.dumps(detail),
                }
            )
        events.put_events(Entries=entries)


def wait_for(receiver: Receiver, prefix: str, want: int) -> float:
    """Seconds until `want` POSTs under `prefix` have arrived."""
    started = time.monotonic()
    while receiver.count(prefix) < want:
        if time.monotonic() - started > WAIT_LIMIT:
            raise TimeoutError(f"{receiver.count(prefix)} of {want} deliveries after {WAIT_LIMIT} s")
        time.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def local_stack() -> Iterator[Any]:
    from tools.local_stack import LocalStack

    for name in ("local_stack", "segments", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with quiet(), LocalStack(port=0, moto_port=0, create_demo_key=False) as stack:
        os.environ["WEBHOOK_TIMEOUT_SECONDS"] = str(HANG_TIMEOUT)
        core.reset_clients()
        yield stack


@benchmark(
    "webhooks",
    "10,000 events x 100 endpoints of 10 orgs (run smaller here): deliveries/s, DynamoDB and SQS calls per "
    "delivery, delay median and p99; a hanging endpoint keeps another org's p99 within 2x",
)
def run(opts: Options) -> dict[str, Any]:
    n = sizes(opts)
    per_org = max(1, n["endpoints"] // n["orgs"])
    deliveries = n["events"] * per_org
    say(f"  {n['events']:,} events x {per_org * n['orgs']} endpoints of {n['orgs']} orgs = {deliveries:,} deliveries")
    receiver = Receiver()
    out: dict[str, Any] = {"sizes": n}
    try:
        with local_stack() as stack:
            info = stack.info
            bus = boto3.client("events", endpoint_url=info.moto_url, region_name="us-east-1")
            orgs = [f"org-hook{i}" for i in range(n["orgs"])]
            for org in orgs:
                key = core.create_api_key(org, org)
                for e in range(per_org):
                    register(info.api_url, key, receiver.url(f"/ok/{org}/{e}"))
            healthy, hanging = "org-healthy", "org-hanging"
            register(info.api_url, core.create_api_key(healthy, healthy), receiver.url("/iso/healthy"))
            register(info.api_url, core.create_api_key(hanging, hanging), receiver.url("/hang/x"))
            put_events(bus, [healthy], ISOLATION_EVENTS, "alone", rate=ISOLATION_RATE)
            wait_for(receiver, "/iso/", ISOLATION_EVENTS)
            alone = receiver.delays("/iso/")
            put_events(bus, [healthy, hanging], 2 * ISOLATION_EVENTS, "hang", rate=2 * ISOLATION_RATE)
            wait_for(receiver, "/iso/", 2 * ISOLATION_EVENTS)
            both = receiver.delays("/iso/")[ISOLATION_EVENTS:]
            out["isolation"] = {
                "healthy_p99_alone_s": p(alone, 0.99),
                "healthy_p99_with_hang_s": p(both, 0.99),
                "ratio": p(both, 0.99) / p(alone, 0.99),
                "hanging_posts": receiver.count("/hang"),
                "load_average": os.getloadavg()[0],
            }
            with ServiceCalls("dynamodb", "sqs", "kms", "events") as calls:
                core.reset_clients()  # the functions' clients, made again under the counter
                started = time.monotonic()
                put_events(bus, orgs, n["events"], "fan")
                wait_for(receiver, "/ok/", deliveries)
                elapsed = time.monotonic() - started
                counted = calls.by_operation()
            delays = receiver.delays("/ok/")
            out["fan_out"] = {
                "deliveries_per_s": deliveries / elapsed,
                "delay_median_s": statistics.median(delays),
                "delay_p99_s": p(delays, 0.99),
                "calls_per_delivery": {op: c / deliveries for op, c in counted.items()},
            }

    finally:
        receiver.stop()
    f, i = out["fan_out"], out["isolation"]
    median, p99 = f["delay_median_s"] * 1000, f["delay_p99_s"] * 1000
    say(
        f"  deliveries/s {f['deliveries_per_s']:.1f}; delay PutEvents -> POST: median {median:.0f} ms, p99 {p99:.0f} ms"
    )
    per = ", ".join(f"{op} {v:.3f}" for op, v in f["calls_per_delivery"].items())
    say(f"  calls per delivery (the functions'): {per}")
    alone, beside = i["healthy_p99_alone_s"] * 1000, i["healthy_p99_with_hang_s"] * 1000
    say(
        f"  isolation ({ISOLATION_EVENTS} events of the healthy org, timeout {HANG_TIMEOUT} s): "
        f"p99 alone {alone:.0f} ms,"
    )
    say(f"    beside a hanging endpoint {beside:.0f} ms: ratio {i['ratio']:.2f} (target <= 2)")
    say(f"    the hanging endpoint got {i['hanging_posts']} POST(s) for its {ISOLATION_EVENTS} events")
    say(f"  load average (1 min) at the end: {i['load_average']:.1f} on {os.cpu_count()} cores")
    return out
