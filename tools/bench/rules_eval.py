"""`rules-eval`: the rule evaluator's throughput in-process (rule evaluations per second, i.e.
rules x records), `compile_rules` against the reference interpreter (tools/bench/rules_reference.py)
on the same segments and records in the same run (docs/performance.md, "Rules evaluator")."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tools.bench import core, rules_reference
from tools.bench.harness import Options, benchmark, function_env, say

SEGMENTS = 200
RECORDS = 1_000
SEED = 8

COUNTRIES = ["GB", "FR", "DE", "ES", "IT", "US"]
TAGS = ["vip", "donor", "member", "lapsed", "volunteer", "board", "press"]
EMPLOYERS = ["ACME Ltd", "Initech", "Globex", "Umbrella", "Hooli"]
PLACES = [(51.5074, -0.1278), (48.8566, 2.3522), (52.52, 13.405), (40.4168, -3.7038), (41.9028, 12.4964)]


def person(rng: random.Random, i: int) -> dict[str, Any]:
    """A person record as the registry holds it (numbers as Decimal, as DynamoDB returns them)."""
    lat, lon = rng.choice(PLACES)
    return {
        "minerva_pid": f"p-{i:06d}",
        "name": f"Person {i}",
        "employer": rng.choice(EMPLOYERS),
        "title": rng.choice(["Engineer", "Director", "Head of Sales", "CFO"]),
        "age": Decimal(rng.randint(18, 90)),
        "score": Decimal(str(round(rng.random(), 3))),
        "deceased": rng.random() < 0.05,
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "joined": f"20{rng.randint(10, 24):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:30:00.000000Z",
        "location": {
            "country": rng.choice(COUNTRIES),
            "lat": Decimal(str(round(lat + rng.uniform(-1, 1), 4))),
            "lon": Decimal(str(round(lon + rng.uniform(-1, 1), 4))),
        },
    }


def plain_rule(rng: random.Random) -> dict[str, Any]:
    lat, lon = rng.choice(PLACES)
    return rng.choice(
        [
            {"field": "employer", "operator": "equals", "value": rng.choice(EMPLOYERS).lower()},
            {"field": "location.country", "operator": "exact", "value": rng.choice(COUNTRIES)},
            {"field": "deceased", "operator": "not_equal_to", "value": True},
            {
                "field": "age",
                "operator": rng.choice(["greater_than", "less_than_or_equals"]),
                "value": rng.randint(20, 80),
            },
            {"field": "score", "operator": "greater_than_or_equals", "value": round(rng.random(), 2)},
            {"field": "joined", "operator": "less_than", "value": f"20{rng.randint(10, 24)}-06-01"},
            {"field": "title", "operator": "starts_with_case_insensitive", "value": rng.choice(["head", "dir", "c"])},
            {"field": "tags", "operator": "or_list", "value": ", ".join(rng.sample(TAGS, 2))},
            {"field": "tags", "operator": "and_list", "value": rng.sample(TAGS, 2)},
            {"field": "tags", "operator": "none_of", "value": ["lapsed"]},
            {"field": "location", "operator": "near", "value": f"{lat},{lon},{rng.choice([25, 100, 300])}"},
        ]
    )


def segment_rules(rng: random.Random) -> list[dict[str, Any]]:
    """One to four plain rules, and one segment in four also a raw tree of three rules."""
    rules = [plain_rule(rng) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.25:
        tree = {"any": [plain_rule(rng), {"not": plain_rule(rng)}, {"all": [plain_rule(rng)]}]}
        rules.append({"field": "*", "operator": "raw", "value": tree})
    return rules


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def measure(runs: int) -> dict[str, Any]:
    rng = random.Random(SEED)  # nosec B311  # seeded benchmark data
    segments = [core.stored_rules(segment_rules(rng)) for _ in range(SEGMENTS)]
    records = [person(rng, i) for i in range(RECORDS)]
    evaluations = sum(len(rules) for rules in segments) * len(records)  # rules x records

    def ours() -> int:
        compiled = [core.compile_rules(rules) for rules in segments]
        return sum(predicate(record) for predicate in compiled for record in records)

    def reference() -> int:
        return sum(rules_reference.matches(rules, record) for rules in segments for record in records)

    compile_s, _ = _timed(lambda: [core.compile_rules(rules) for rules in segments])
    samples = []
    for _ in range(max(1, runs)):
        ours_s, ours_hits = _timed(ours)
        ref_s, ref_hits = _timed(reference)
        if ours_hits != ref_hits:
            raise RuntimeError(f"evaluator and reference disagree: {ours_hits} vs {ref_hits} matches")
        samples.append((ours_s, ref_s))
    ours_s = statistics.median(s for s, _ in samples)
    ref_s = statistics.median(r for _, r in samples)
    ratios = [r / s for s, r in samples]
    return {
        "segments": SEGMENTS,
        "records": RECORDS,
        "rules": sum(len(r) for r in segments),
        "rule evaluations": evaluations,
        "matches": ours_hits,
        "compile all segments s": compile_s,
        "ours s": ours_s,
        "ours evaluations/s": evaluations / ours_s,
        "reference s": ref_s,
        "reference evaluations/s": evaluations / ref_s,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


@benchmark("rules-eval", "rules x records per second: compile_rules faster than the reference, same run")
def rules_eval(opts: Options) -> dict[str, Any]:
    with function_env():
        result = measure(min(opts.runs, 3))
    say(
        f"  {result['segments']} segments ({result['rules']} rules, raw trees counted as one) x "
        f"{result['records']:,} person records = {result['rule evaluations']:,} rule evaluations, "
        f"{result['matches']:,} segment matches"
    )
    say(f"  compile_rules, all segments:  {result['compile all segments s'] * 1000:8.1f} ms")
    say(
        f"  compile_rules + evaluate:     {result['ours s']:8.3f} s  "
        f"({result['ours evaluations/s']:,.0f} rule evaluations/s)"
    )
    say(
        f"  reference interpreter:        {result['reference s']:8.3f} s  "
        f"({result['reference evaluations/s']:,.0f} rule evaluations/s)"
    )
    ratios = ", ".join(f"{r:.1f}" for r in result["ratios"])
    say(f"  ratio: {result['ratio']:.1f} x faster than the reference (median of {ratios})")
    return result
