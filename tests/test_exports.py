"""Exports through the gateway, ExportQueue and ExportFunction: Minerva's `/v2/segments/exports`, the
file on S3 (multipart, part by chunk), a killed chunk resumed, one org never seeing another's job."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from helpers.exports import Exports, exports_fixture  # noqa: F401 - the `exports` fixture
from helpers.signals import add, create_segment, signals_fixture  # noqa: F401 - the `signals` fixture

from conftest import Api, Org
from segments.store import people

PIDS = [f"p-x{i:03d}" for i in range(40)]


def seed(api: Api, org: Org, name: str = "Donors", pids: list[str] = PIDS) -> str:
    segment_id = create_segment(api, org.key, name)
    add(api, org.key, segment_id, *pids)
    for i, pid in enumerate(pids):
        if i % 4:  # every fourth member has no person record
            people.put(
                org.org_id, pid, {"first_name": f"N{i}", "email": f"n{i}@example.com", "address": {"city": "York"}}
            )
    return segment_id


def start(api: Api, org: Org, segment_id: str, fmt: str = "csv", **extra: Any) -> Any:
    return api.post("/v2/segments/exports", key=org.key, body={"segment_id": segment_id, "format": fmt, **extra})


def read(api: Api, org: Org, export_id: str) -> dict[str, Any]:
    resp = api.get(f"/v2/segments/exports/{export_id}", key=org.key)
    assert resp.status == 200, resp.text
    return dict(resp.json)


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_a_csv_export_holds_every_member_once_with_the_fields_asked(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org)
    started = start(api, org, segment_id, fields=["email", "address.city", "no.such.field"])
    assert started.status == 202, started.text
    job = started.json
    assert job["status"] == "queued" and job["url"] is None
    assert job["columns"] == [
        "minerva_pid",
        "first_added_at",
        "last_added_at",
        "email",
        "address.city",
        "no.such.field",
    ]
    assert read(api, org, job["export_id"])["status"] == "queued"
    assert exports.run_jobs() > 2  # 40 rows of ~70 bytes in parts of 300 bytes: several chunks
    done = read(api, org, job["export_id"])
    assert done["status"] == "succeeded" and done["rows"] == 40 and done["error"] is None
    assert done["url"].startswith("https://") and "X-Amz-Signature=" in done["url"]
    assert "X-Amz-Expires=900" in done["url"]
    data = exports.fetch(done["url"])
    assert done["size_bytes"] == len(data)
    rows = rows_of(data)
    assert rows[0] == job["columns"]
    assert [r[0] for r in rows[1:]] == PIDS  # every member once, in PID order
    assert rows[2][3:] == ["n1@example.com", "York", ""]  # an unknown field is an empty column
    assert rows[1][3:] == ["", "", ""]  # no person record: empty fields
    assert exports.keys() == [f"{org.org_id}/{job['export_id']}.csv"]


def test_jsonl_export_and_the_listing(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org)
    other = seed(api, org, "Other", PIDS[:3])
    first = start(api, org, segment_id, "jsonl", fields=["first_name"]).json
    second = start(api, org, other, "jsonl").json
    exports.run_jobs()
    lines = [json.loads(line) for line in exports.fetch(read(api, org, first["export_id"])["url"]).splitlines()]
    assert [line["minerva_pid"] for line in lines] == PIDS
    assert lines[1]["first_name"] == "N1" and lines[0]["first_name"] is None
    listed = api.get("/v2/segments/exports", key=org.key).json["results"]["items"]
    assert [j["export_id"] for j in listed] == [second["export_id"], first["export_id"]]  # newest first
    only = api.get("/v2/segments/exports", key=org.key, query={"segment_id": other}).json["results"]["items"]
    assert [j["export_id"] for j in only] == [second["export_id"]]


def test_a_killed_chunk_is_done_again_without_doubling_or_missing_a_row(api: Api, org: Org, exports: Exports) -> None:
    from segments.external import files

    segment_id = seed(api, org)
    export_id = start(api, org, segment_id).json["export_id"]
    first = exports.messages()[0]
    assert exports.chunk(first) == []
    second = exports.messages()[0]
    real_advance = __import__("segments.store.exports", fromlist=["advance"]).advance
    calls = {"n": 0}

    def dies_after_upload(*a: Any, **k: Any) -> bool:
        calls["n"] += 1
        raise RuntimeError("killed after its part was uploaded, before recording it")

    import segments.store.exports as store

    store.advance = dies_after_upload  # type: ignore[assignment]
    try:
        assert exports.chunk(second) != []  # the chunk failed: SQS delivers it again
    finally:
        store.advance = real_advance  # type: ignore[assignment]
    assert calls["n"] == 1
    assert exports.chunk(second, receive_count=2) == []  # done again: the same part number, replaced
    assert exports.chunk(first, receive_count=2) == []  # a stray copy of a recorded chunk changes nothing
    exports.run_jobs()
    done = read(api, org, export_id)
    assert done["status"] == "succeeded", done
    assert [r[0] for r in rows_of(exports.fetch(done["url"]))[1:]] == PIDS
    assert files is not None


def test_another_org_never_sees_a_job_or_its_file(api: Api, org: Org, other_org: Org, exports: Exports) -> None:
    segment_id = seed(api, org)
    export_id = start(api, org, segment_id).json["export_id"]
    exports.run_jobs()
    assert api.get(f"/v2/segments/exports/{export_id}", key=other_org.key).status == 404
    assert api.get("/v2/segments/exports", key=other_org.key).json["results"]["items"] == []
    assert start(api, other_org, segment_id).status == 404  # nor export its segment
    theirs = seed(api, other_org, "Theirs", PIDS[:2])
    their_job = start(api, other_org, theirs).json["export_id"]
    exports.run_jobs()
    url = read(api, other_org, their_job)["url"]
    assert f"/{other_org.org_id}/" in url and f"/{org.org_id}/" not in url


def test_bad_input_answers_in_minervas_shape(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, pids=PIDS[:2])
    missing = "00000000-0000-4000-8000-000000000000"
    for body, status in (
        ({"segment_id": segment_id, "format": "pdf"}, 422),  # not offered on this surface
        ({"segment_id": segment_id, "format": "xml"}, 422),
        ({"segment_id": missing, "format": "csv"}, 404),
        ({"segment_id": segment_id, "format": "csv", "fieldset_id": "f" * 32}, 404),
        ({"segment_id": segment_id, "format": "csv", "fields": ["a..b"]}, 422),
    ):
        resp = api.post("/v2/segments/exports", key=org.key, body=body)
        assert resp.status == status, (body, resp.text)
        assert set(resp.json) >= {"error", "status_code", "api_request_id"}
    assert api.get(f"/v2/segments/exports/{missing}", key=org.key).status == 404
    assert api.get("/v2/segments/exports/not-an-id", key=org.key).status == 404


def test_at_most_n_jobs_run_at_once_per_org(api: Api, org: Org, other_org: Org, exports: Exports, monkeypatch) -> None:
    from segments import aws

    monkeypatch.setenv("EXPORT_MAX_CONCURRENT", "2")
    aws.reset()
    segment_id = seed(api, org, pids=PIDS[:2])
    assert start(api, org, segment_id).status == 202
    assert start(api, org, segment_id).status == 202
    refused = start(api, org, segment_id)
    assert refused.status == 429, refused.text
    assert "At most 2 exports" in refused.json["error"] and refused.json["status_code"] == 429
    theirs = seed(api, other_org, "Theirs", PIDS[:2])
    assert start(api, other_org, theirs).status == 202  # another org's jobs do not count
    exports.run_jobs()
    assert start(api, org, segment_id).status == 202  # finished jobs do not count


def test_a_job_whose_segment_is_deleted_fails_saying_why(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, pids=PIDS[:2])
    export_id = start(api, org, segment_id).json["export_id"]
    assert api.delete(f"/v2/segments/{segment_id}", key=org.key).status == 200
    exports.run_jobs()
    job = read(api, org, export_id)
    assert job["status"] == "failed" and job["url"] is None
    assert job["error"] == "the segment was deleted while the export ran"


def test_finished_exports_go_out_on_the_bus(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, pids=PIDS[:5])
    export_id = start(api, org, segment_id).json["export_id"]
    exports.run_jobs()
    assert exports.signals.publish()["batchItemFailures"] == []
    finished = [e for e in exports.signals.bus.published() if e["detail-type"] == "Segment Export Finished"]
    assert len(finished) == 1
    detail = finished[0]["detail"]
    assert (detail["org_id"], detail["segment_id"], detail["export_id"], detail["rows"], detail["status"]) == (
        org.org_id,
        segment_id,
        export_id,
        5,
        "succeeded",
    )


def test_members_added_after_the_request_are_left_out(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, pids=PIDS[:10])
    export_id = start(api, org, segment_id).json["export_id"]
    add(api, org.key, segment_id, "p-late1", "p-x001")  # a new member, and one already in (not re-added)
    api.post("/v2/segments/members/remove", key=org.key, body={"segment_id": segment_id, "minerva_pids": ["p-x009"]})
    exports.run_jobs()
    done = read(api, org, export_id)
    pids = [r[0] for r in rows_of(exports.fetch(done["url"]))[1:]]
    assert pids == PIDS[:9] and done["rows"] == 9  # the request's members, less one removed before it was read


def test_a_chunk_failing_on_its_last_delivery_fails_the_job_naming_why(
    api: Api, org: Org, exports: Exports, monkeypatch: Any
) -> None:
    from segments.store import records

    segment_id = seed(api, org, pids=PIDS[:3])
    export_id = start(api, org, segment_id).json["export_id"]
    message = exports.messages()[0]

    def broken(*a: Any, **k: Any) -> Any:
        raise ValueError("the store answered nonsense")

    monkeypatch.setattr(records, "members_page", broken)
    for receive in range(1, 5):
        assert exports.chunk(message, receive_count=receive) != []  # redelivered by SQS
        assert read(api, org, export_id)["status"] == "queued"
    assert exports.chunk(message, receive_count=5) == []  # the last delivery: not to the DLQ
    job = read(api, org, export_id)
    assert job["status"] == "failed" and "failed 5 times (ValueError)" in job["error"]
