"""`exports`: a segment's members to a file on S3 (docs/performance.md, "Exports").

N members with 5 person-record fields each, exported to CSV and to XLSX by the export engine
(usecases/exports.py: the chunks ExportFunction runs, here one after the other in this process),
for each size of `--export-sizes` (default 10,000 and 100,000). DynamoDB and S3 are a moto server
in a process of its own (with its Query by partition, tools/bench/moto.py), so this process is the
worker alone: its memory (tracemalloc) and its CPU time hold nothing of the emulator.

Figures per run: rows/s; estimated DynamoDB read units per 1,000 rows (from the sizes of the items
each call returned: a Query page rounds up to 4 KB, a BatchGetItem item each to 4 KB, eventually
consistent reads at half a unit, the job's strongly consistent GetItems at one); the worker's
peak traced memory; its CPU time; and its calls, from which the time for 1,000,000 members on AWS
is projected with the latencies stated in the output plus its CPU time, scaled. Parts are
EXPORT_PART_BYTES (256 KiB here, the moto server told to accept them; 5 MiB on AWS, S3's
minimum): a chunk's memory is bounded by one part, so the peak ratio compares two runs that both
fill parts.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from tools import cfn
from tools.bench import core
from tools.bench.harness import ORG, TEMPLATE, Options, benchmark, function_env, say
from tools.bench.moto import free_port, moto_partition_lookup
from tools.moto_atomic import make_moto_atomic

FIELDS = ["first_name", "last_name", "email", "address.city", "score"]
PART_BYTES = 256 * 1024
# What a chunk's calls cost on AWS (same region, Lambda arm64 1 GB): typical latencies, stated in the output.
AWS_MS = {"Query": 25.0, "BatchGetItem round": 20.0, "part upload (5 MiB)": 120.0, "chunk overhead": 80.0}
PARALLEL = 8  # BatchGetItem calls at once (store/dynamo.py PARALLEL_CALLS)


def sizes() -> list[int]:
    raw = os.environ.get("BENCH_EXPORT_SIZES", "10000,100000")
    return sorted({int(s) for s in raw.split(",") if s.strip()})


def _serve_at_scale(port: int, ready: Any) -> None:
    """The moto server's process: DynamoDB with a Query by partition and atomic transactions
    (tools/bench/moto.py), S3 taking parts of PART_BYTES; serve until terminated."""
    import logging
    import threading

    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = str(PART_BYTES)  # read when moto is imported, below
    from moto.server import ThreadedMotoServer

    make_moto_atomic()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_partition_lookup():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        ready.set()
        threading.Event().wait()


@contextlib.contextmanager
def moto_elsewhere() -> Iterator[str]:
    """A moto server (DynamoDB and S3) in a process of its own, AWS_ENDPOINT_URL naming it, the
    template's tables created: nothing of the emulator lives in the worker's process."""
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    process = ctx.Process(target=_serve_at_scale, args=(port, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("moto server did not start")
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        core.reset_core()
        cfn.create_tables(core.dynamo_client(), cfn.load_template(TEMPLATE))
        yield os.environ["AWS_ENDPOINT_URL"]
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        core.reset_core()
        process.terminate()
        process.join(10)


def _size(value: Any) -> int:
    """An attribute value's size as DynamoDB counts it (near enough: strings and binary by bytes,
    numbers by digits, 3 bytes of overhead for lists and maps)."""
    ((kind, raw),) = value.items()
    if kind in ("S", "B"):
        return len(raw.encode() if isinstance(raw, str) else raw)
    if kind == "N":
        return math.ceil(len(str(raw).lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k) + _size(v) for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_size(v) for v in raw)
    return len(str(raw))


def _item_size(item: dict[str, Any]) -> int:
    return sum(len(k) + _size(v) for k, v in item.items())


class ReadUnits:
    """Read units of every DynamoDB answer, estimated from the items returned (see the docstring)."""

    def __init__(self) -> None:
        self.units = 0.0
        self.calls: dict[str, int] = {}

    def __call__(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "Query":
            total = sum(_item_size(i) for i in parsed.get("Items", []))
            self.units += max(1, math.ceil(total / 4096)) * 0.5
        elif name == "BatchGetItem":
            for items in (parsed.get("Responses") or {}).values():
                self.units += sum(math.ceil(max(1, _item_size(i)) / 4096) * 0.5 for i in items)
        elif name == "GetItem":
            self.units += 1.0


def _record(i: int) -> dict[str, Any]:
    return {
        "first_name": f"Ada{i}",
        "last_name": "Lovelace",
        "email": f"ada{i}@example.org",
        "address": {"city": ["York", "Leeds", "Hull"][i % 3], "country": "GB"},
        "score": i % 100,
    }


def _export(segment_id: str, fmt: str, *, traced: bool) -> dict[str, Any]:
    units = ReadUnits()
    events = core.dynamo_client().meta.events
    events.register("after-call.dynamodb", units)
    if traced:
        tracemalloc.start()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        ran = core.run_export(ORG["org_id"], ORG["bucket"], segment_id, fmt, FIELDS)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] if traced else None
    finally:
        if traced:
            tracemalloc.stop()
        events.unregister("after-call.dynamodb", units)
    done = ran["job"]
    return {
        "status": done["status"],
        "rows": int(done.get("rows") or 0),
        "size_bytes": int(done.get("size_bytes") or 0),
        "seconds": took,
        "worker_seconds": cpu,
        "chunks": len(ran["chunk_seconds"]),
        "peak_bytes": peak,
        "read_units": units.units,
        "calls": dict(units.calls),
    }


def _projection(run: dict[str, Any], fmt: str) -> dict[str, float]:
    """Seconds for 1,000,000 members on AWS: this run's calls scaled to 1,000,000 rows at the
    latencies of AWS_MS, plus the worker's CPU time scaled alike (as if a Lambda core were as fast
    as this machine's)."""
    scale = 1_000_000 / max(1, run["rows"])
    queries = run["calls"].get("Query", 0) * scale
    batch_rounds = math.ceil(run["calls"].get("BatchGetItem", 0) * scale / PARALLEL)
    parts = math.ceil(run["size_bytes"] * scale / (5 * 1024 * 1024))
    chunks = parts if fmt == "csv" else 1
    aws_seconds = (
        queries * AWS_MS["Query"]
        + batch_rounds * AWS_MS["BatchGetItem round"]
        + parts * AWS_MS["part upload (5 MiB)"]
        + chunks * AWS_MS["chunk overhead"]
    ) / 1000
    return {"aws_calls_seconds": aws_seconds, "worker_seconds": run["worker_seconds"] * scale, "chunks": chunks}


@benchmark(
    "exports",
    "100,000 and 10,000 members (5 person fields) to CSV and XLSX: rows/s, read units per 1,000 rows, worker peak "
    "memory ratio <= 1.2; projected time for 1,000,000 on AWS (target <= 60 s)",
)
def exports_bench(opts: Options) -> dict[str, Any]:
    import boto3

    results: dict[str, Any] = {"sizes": sizes(), "fields": FIELDS, "part_bytes": PART_BYTES, "runs": {}}
    env = {"EXPORTS_BUCKET": "bench-exports", "EXPORT_PART_BYTES": str(PART_BYTES), "EXPORT_MAX_CONCURRENT": "100"}
    with function_env(env), moto_elsewhere():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bench-exports")
        with core.patient_dynamodb():
            results["runs"] = _runs()
    return _summary(results)


def _runs() -> dict[str, Any]:
    """Each size seeded, then exported to CSV and XLSX: once for time, once traced for memory."""
    runs: dict[str, Any] = {}
    for n in sizes():
        at = time.perf_counter()
        segment_id = core.seed_export_segment(ORG["org_id"], ORG["bucket"], n, _record)
        say(f"  seeded {n:,} members and their person records in {time.perf_counter() - at:.1f} s")
        for fmt in ("csv", "xlsx"):
            speed = _export(segment_id, fmt, traced=False)
            memory = _export(segment_id, fmt, traced=True)
            run = runs[f"{fmt} {n}"] = {
                **speed,
                "peak_bytes": memory["peak_bytes"],
                "projection": _projection(speed, fmt),
            }
            say(
                f"  {fmt:4} {n:>7,} members: {run['status']}, {run['rows']:,} rows, "
                f"{run['size_bytes'] / 1e6:.1f} MB in {run['seconds']:.1f} s = {run['rows'] / run['seconds']:,.0f} "
                f"rows/s (worker CPU {run['worker_seconds']:.1f} s: "
                f"{run['rows'] / max(run['worker_seconds'], 1e-9):,.0f} rows/s); {run['chunks']} chunk(s); "
                f"{run['read_units'] / run['rows'] * 1000:.1f} read units / 1,000 rows; "
                f"peak {run['peak_bytes'] / 2**20:.1f} MiB; calls {run['calls']}"
            )
    return runs


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """The peak ratio of the largest size to the smallest, and the projection for 1,000,000."""
    big, small = max(sizes()), min(sizes())
    say(f"  latencies assumed on AWS: {AWS_MS} (BatchGetItem: {PARALLEL} at once)")
    for fmt in ("csv", "xlsx"):
        b, s = results["runs"][f"{fmt} {big}"], results["runs"][f"{fmt} {small}"]
        ratio = b["peak_bytes"] / s["peak_bytes"]
        p = b["projection"]
        projected = p["aws_calls_seconds"] + p["worker_seconds"]
        results[f"{fmt} peak ratio"] = ratio
        results[f"{fmt} projected 1M seconds"] = projected
        say(
            f"  {fmt}: peak {big:,} / {small:,} = {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'}); "
            f"1,000,000 on AWS ~ {projected:.0f} s = {p['aws_calls_seconds']:.0f} s of calls + "
            f"{p['worker_seconds']:.0f} s of the worker's CPU ({p['chunks']} chunk(s), one after the other); "
            f"target <= 60 s: {'met' if projected <= 60 else 'NOT met'}"
        )
    return results
