"""SheepCRM exports and fieldsets: `/all/excel|xlsx|pdf` answer the vendor's receipt, the journal
follows the job to its file (CSV for Excel, an XLSX split into sheets, a PDF under its row cap);
fieldsets in the vendor's shapes, the generated one of every person-record field, used by exports on
both surfaces; another org sees none of it."""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile
import zlib
from typing import Any

import pytest
from helpers.exports import Exports, exports_fixture  # noqa: F401 - the `exports` fixture
from helpers.signals import add, create_segment, signals_fixture  # noqa: F401 - the `signals` fixture
from helpers.vendor_schema import validate_vendor, validate_vendor_error

from conftest import Api, Org
from segments.store import people

PIDS = [f"p-s{i:03d}" for i in range(12)]
BASE = "/segments/v2/{bucket}"


def seed(api: Api, org: Org, pids: list[str] = PIDS) -> str:
    segment_id = create_segment(api, org.key, f"Donors {len(pids)}")
    add(api, org.key, segment_id, *pids)
    for i, pid in enumerate(pids):
        people.put(
            org.org_id, pid, {"first_name": "Ada", "last_name": f"L{i}", "email": f"a{i}@x.org", "tier": {"level": i}}
        )
    return segment_id


def report(api: Api, org: Org, segment_id: str, kind: str, **query: Any) -> Any:
    path = f"/segments/v2/{org.bucket}/segment/{uuid.UUID(segment_id).hex}/all/{kind}"
    return api.get(path, bearer=org.key, query=query or None)


def journal(api: Api, org: Org, receipt: dict[str, Any]) -> dict[str, Any]:
    uid = receipt["journal_uri"].split("/")[3]
    resp = api.get(f"/segments/v2/{org.bucket}/journal/{uid}", bearer=org.key)
    assert resp.status == 200, resp.text
    return dict(resp.json)


def test_excel_answers_the_vendors_receipt_and_its_journal_gives_the_file(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org)
    resp = report(api, org, segment_id, "excel", fields="email,tier.level")
    assert resp.status == 200, resp.text
    validate_vendor("GET", BASE + "/segment/{uid}/all/excel", 200, resp.json)
    receipt = resp.json
    assert receipt["report_format"] == "excel" and receipt["bucket"] == org.bucket
    assert re.fullmatch(rf"/{org.bucket}/journal/[0-9a-f]{{32}}/", receipt["journal_uri"])
    assert journal(api, org, receipt)["status"] == "queued"
    exports.run_jobs()
    done = journal(api, org, receipt)
    assert (done["status"], done["rows"], done["message"]) == ("succeeded", 12, None)
    data = exports.fetch(done["url"])
    assert data.startswith("\ufeff".encode())  # Excel reads UTF-8 with a byte-order mark
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["uri", "display_value", "first_added_at", "last_added_at", "email", "tier.level"]
    assert rows[1][:2] == [f"/{org.bucket}/person/p-s000/", "Ada L0"] and rows[2][4:] == ["a1@x.org", "1"]
    assert len(rows) == 13


def test_xlsx_splits_into_sheets_with_the_header_on_each(
    api: Api, org: Org, exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segments.formats import export_formats

    monkeypatch.setattr(export_formats, "XLSX_SHEET_ROWS", 5)  # Excel's is 1,048,576: 4 members a sheet here
    segment_id = seed(api, org)
    receipt = report(api, org, segment_id, "xlsx", fields="email").json
    exports.run_jobs()
    done = journal(api, org, receipt)
    assert done["status"] == "succeeded" and done["rows"] == 12
    book = zipfile.ZipFile(io.BytesIO(exports.fetch(done["url"])))
    sheets = sorted(n for n in book.namelist() if n.startswith("xl/worksheets/sheet"))
    assert len(sheets) == 3
    texts = [book.read(s).decode() for s in sheets]
    assert all("display_value" in t for t in texts)  # the header row on every sheet
    assert [len(re.findall(r"<row ", t)) for t in texts] == [5, 5, 5]
    assert "p-s011" in texts[2] and "a11@x.org" in texts[2]


def test_pdf_is_a_table_under_its_row_cap(
    api: Api, org: Org, exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segments import aws

    segment_id = seed(api, org)
    receipt = report(api, org, segment_id, "pdf", template="").json
    exports.run_jobs()
    done = journal(api, org, receipt)
    assert done["status"] == "succeeded" and done["rows"] == 12
    data = exports.fetch(done["url"])
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    text = b"".join(zlib.decompress(m) for m in re.findall(rb"stream\n(.*?)\nendstream", data, re.S))
    assert b"(Ada L11)" in text and b"(display_value)" in text
    monkeypatch.setenv("EXPORT_PDF_MAX_ROWS", "10")
    aws.reset()
    refused = report(api, org, segment_id, "pdf")
    assert refused.status == 400, refused.text
    validate_vendor_error(refused.json)
    assert "at most 10 rows" in refused.json["description"]


def test_fieldsets_in_the_vendors_shapes(api: Api, org: Org, other_org: Org, exports: Exports) -> None:
    seed(api, org, PIDS[:3])
    base = f"/segments/v2/{org.bucket}/fieldset"
    made = api.post(base, bearer=org.key, query={"name": "Contact", "fields": "email,first_name"})
    assert made.status == 201, made.text
    validate_vendor("POST", BASE + "/fieldset", 201, made.json)
    assert (
        made.json["fields"] == ["email", "first_name"]
        and made.json["uri"] == f"/{org.bucket}/fieldset/{made.json['uid']}/"
    )
    one = api.get(f"{base}/{made.json['uid']}", bearer=org.key)
    assert one.status == 200 and one.json == made.json
    validate_vendor("GET", BASE + "/fieldset/{uid}", 200, one.json)
    listed = api.get(base, bearer=org.key, query={"resource": "person"})
    validate_vendor("GET", BASE + "/fieldset", 200, listed.json)
    generated, *rest = listed.json["fieldsets"]
    assert generated["uid"] == "person"
    assert generated["fields"] == ["email", "first_name", "last_name", "tier.level"]  # every field seen, flattened
    assert [f["uid"] for f in rest] == [made.json["uid"]]
    assert api.get(base, bearer=other_org.key).status == 403  # another bucket's path
    theirs = api.get(f"/segments/v2/{other_org.bucket}/fieldset", bearer=other_org.key, query={"resource": "person"})
    assert [f["uid"] for f in theirs.json["fieldsets"]] == ["person"] and theirs.json["fieldsets"][0]["fields"] == []
    assert api.get(f"/segments/v2/{other_org.bucket}/fieldset/{made.json['uid']}", bearer=other_org.key).status == 404
    from_resource = api.post(base, bearer=org.key, body={"resource": "person"})
    assert from_resource.status == 201 and from_resource.json["fields"] == generated["fields"]
    for bad in ({"fields": []}, {"resource": "invoice"}, {"fields": ["a..b"]}):
        resp = api.post(base, bearer=org.key, body=bad)
        assert resp.status == 400, (bad, resp.text)
        validate_vendor_error(resp.json)
    gone = api.delete(base, bearer=org.key, query={"uid": made.json["uid"]})
    assert gone.status == 200 and gone.json["record_state"] == "deleted"
    assert api.get(f"{base}/{made.json['uid']}", bearer=org.key).status == 404
    assert api.delete(f"{base}/{made.json['uid']}", bearer=org.key).status == 404
    assert api.delete(f"{base}/person", bearer=org.key).status == 400


def test_an_export_takes_a_fieldset_on_both_surfaces(api: Api, org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, PIDS[:3])
    fs = api.post(f"/segments/v2/{org.bucket}/fieldset", bearer=org.key, body={"fields": ["last_name"]}).json["uid"]
    minerva = api.post(
        "/v2/segments/exports",
        key=org.key,
        body={"segment_id": segment_id, "format": "csv", "fieldset_id": fs, "fields": ["email"]},
    )
    assert minerva.status == 202 and minerva.json["columns"][-2:] == ["last_name", "email"]
    sheep = report(api, org, segment_id, "excel", template=fs).json
    generated = report(api, org, segment_id, "excel", template="person").json
    exports.run_jobs()
    assert journal(api, org, sheep)["columns"][-1] == "last_name"
    assert journal(api, org, generated)["columns"][4:] == ["email", "first_name", "last_name", "tier.level"]
    assert report(api, org, segment_id, "excel", template="f" * 32).status == 404


def test_another_org_never_reads_a_journal(api: Api, org: Org, other_org: Org, exports: Exports) -> None:
    segment_id = seed(api, org, PIDS[:2])
    receipt = report(api, org, segment_id, "xlsx").json
    uid = receipt["journal_uri"].split("/")[3]
    resp = api.get(f"/segments/v2/{other_org.bucket}/journal/{uid}", bearer=other_org.key)
    assert resp.status == 404 and resp.json["error"] == "Journal not found"
    assert report(api, other_org, segment_id, "xlsx").status == 404
    assert (
        api.get(f"/segments/v2/{org.bucket}/segment/{uuid.UUID(segment_id).hex}/all/docx", bearer=org.key).status == 404
    )
