"""`create-calls`: the DynamoDB calls of one create through CreateSegmentFunction's handler, under
in-process moto (docs/performance.md, "DynamoDB calls per create")."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from tools.bench.calls import DynamoCalls
from tools.bench.harness import Options, api_event, benchmark, event_file, function_env, invoke, load_handler, say
from tools.bench.moto import moto_in_process


@benchmark("create-calls", "create: 1 DynamoDB write, nothing else (auth cached by the authorizer)")
def create_calls(opts: Options) -> dict[str, Any]:
    source = "events/create_segment.json"
    event = event_file("create_segment.json")
    if event is None:
        source = "built in tools/bench/create_calls.py (events/create_segment.json is missing)"
        event = api_event("POST", "/v2/segments/create", {"name": "Bench segment", "description": None})
    ctx = event.setdefault("requestContext", {})
    if not (ctx.get("authorizer") or {}).get("org_id"):
        ctx["authorizer"] = {"principalId": "bench", "org_id": "org-bench", "bucket": "org-bench", "key_id": "b"}
        source += " + authorizer context added"
    raw = event.get("body") or "{}"
    encoded = bool(event.get("isBase64Encoded"))
    body = json.loads(base64.b64decode(raw) if encoded else raw)
    headers = dict(event.get("headers") or {})
    plain_headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}

    def variant(name: str, idem: str | None = None) -> dict[str, Any]:
        ev = json.loads(json.dumps(event))
        text = json.dumps({**body, "name": name})
        ev["body"] = base64.b64encode(text.encode()).decode() if encoded else text
        ev["headers"] = {**plain_headers, **({"Idempotency-Key": idem} if idem else {})}
        ev["multiValueHeaders"] = {k: [v] for k, v in ev["headers"].items()}
        ev["requestContext"]["requestId"] = str(uuid.uuid4())
        return ev

    rows: list[tuple[str, int, DynamoCalls]] = []
    with function_env(), moto_in_process():
        with DynamoCalls() as calls:
            handler = load_handler("CreateSegmentFunction")
            first_name = body.get("name") or "Bench segment"
            cases = [
                ("first create (cold container)", variant(first_name)),
                ("second create, new name", variant(f"{first_name} 2")),
                ("same name again (conflict)", variant(first_name)),
                ("with Idempotency-Key (not in target)", variant(f"{first_name} 3", idem=str(uuid.uuid4()))),
            ]
            for label, ev in cases:
                calls.clear()
                result = invoke(handler, ev)
                snapshot = DynamoCalls()
                snapshot.calls = list(calls.calls)
                rows.append((label, result["statusCode"], snapshot))

    say(f"event: {source}")
    for label, status, snap in rows:
        say(f"  {label:38} HTTP {status}  {snap.summary()}")
    first = rows[0][2].calls
    met = rows[0][1] == 200 and len(first) == 1 and first[0].is_write
    say(f"  target: 1 call, a write -> {'met' if met else 'NOT met'}")
    return {label: {"status": status, "calls": [str(c) for c in snap.calls]} for label, status, snap in rows} | {
        "target_met": met
    }
