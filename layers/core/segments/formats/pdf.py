"""A minimal PDF table writer (pure Python, no dependency): the header row and the rows of a table
on landscape A4 pages, in Helvetica (one of PDF's standard fonts, so nothing is embedded).

Text is written in WinAnsi (Latin-1): a character outside it is shown as '?'. A cell wider than its
column is cut with '...'. Meant for a table people read (exports cap the rows: EXPORT_PDF_MAX_ROWS).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

PAGE_W, PAGE_H = 842.0, 595.0  # A4 landscape, points
MARGIN = 36.0
FONT_SIZE = 8.0
LINE = 12.0
CHAR_W = 0.52 * FONT_SIZE  # Helvetica's mean advance: enough to cut a cell before the next column


def _text(value: str) -> str:
    raw = value.encode("latin-1", "replace").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("\r", " ").replace("\n", " ")


def _fit(value: str, width: float) -> str:
    most = max(1, int(width / CHAR_W))
    return value if len(value) <= most else value[: max(1, most - 3)] + "..."


def _page(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], page: int, pages: int) -> bytes:
    col_w = (PAGE_W - 2 * MARGIN) / max(1, len(header))
    ops = ["BT", f"/F2 {FONT_SIZE + 2:.1f} Tf", f"{MARGIN:.1f} {PAGE_H - MARGIN:.1f} Td"]
    ops.append(f"({_text(_fit(f'{title}  (page {page} of {pages})', PAGE_W - 2 * MARGIN))}) Tj ET")
    y = PAGE_H - MARGIN - 2 * LINE
    for n, row in enumerate([header, *rows]):
        font = "/F2" if n == 0 else "/F1"
        for i, cell in enumerate(row):
            x = MARGIN + i * col_w
            ops.append(f"BT {font} {FONT_SIZE:.1f} Tf {x:.1f} {y:.1f} Td ({_text(_fit(cell, col_w - 4))}) Tj ET")
        line_y = y - 3
        ops.append(f"0.75 w {MARGIN:.1f} {line_y:.1f} m {PAGE_W - MARGIN:.1f} {line_y:.1f} l S")
        y -= LINE
    return "\n".join(ops).encode("latin-1")


def rows_per_page() -> int:
    return int((PAGE_H - 2 * MARGIN - 2 * LINE) // LINE) - 1


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """A whole PDF document: `title` on every page, then the header and as many rows as fit."""
    per = rows_per_page()
    chunks = [rows[i : i + per] for i in range(0, len(rows), per)] or [[]]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages' numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for n, chunk in enumerate(chunks, start=1):
        content = zlib.compress(_page(title, header, chunk, n, len(chunks)))
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream")
        content_ref = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % (PAGE_W, PAGE_H, content_ref)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
