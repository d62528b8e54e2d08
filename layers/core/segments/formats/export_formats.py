"""The rows of an export and how each format writes them (pure: no storage, no AWS).

A column is a name: `minerva_pid`, `uri` (the SheepCRM record uri), `display_value`,
`first_added_at`, `last_added_at` come from the membership; any other name is a dotted path into
the member's person record (`address.city`), and a path the record does not hold is an empty cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from segments.timefmt import sheep_time

Format = Literal["csv", "jsonl", "xlsx", "pdf"]
Surface = Literal["minerva", "sheep"]
EXTENSIONS: dict[str, str] = {"csv": "csv", "jsonl": "jsonl", "xlsx": "xlsx", "pdf": "pdf"}
MEMBERSHIP_COLUMNS = frozenset({"minerva_pid", "uri", "display_value", "first_added_at", "last_added_at"})
IDENTITY: dict[str, tuple[str, ...]] = {
    "minerva": ("minerva_pid", "first_added_at", "last_added_at"),
    "sheep": ("uri", "display_value", "first_added_at", "last_added_at"),
}
FIELDS_MAX = 200
FIELD_MAX_CHARS = 200
XLSX_SHEET_ROWS = 1_048_576  # Excel's rows per sheet (the header row included)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_fields(fields: Sequence[str]) -> list[str]:
    """The fields as asked, duplicates dropped; ValueError naming what is wrong."""
    if len(fields) > FIELDS_MAX:
        raise ValueError(f"at most {FIELDS_MAX} fields")
    for field in fields:
        if not isinstance(field, str) or not 1 <= len(field) <= FIELD_MAX_CHARS:
            raise ValueError(f"a field is a dotted path of 1-{FIELD_MAX_CHARS} characters")
        if any(not part for part in field.split(".")):
            raise ValueError(f"field {field!r} has an empty part (a dotted path is name.name...)")
    return list(dict.fromkeys(fields))


def columns(surface: Surface, fields: Sequence[str]) -> list[str]:
    """The identity columns of the surface, then the fields asked for (in their order, once each)."""
    identity = IDENTITY[surface]
    return [*identity, *(f for f in dict.fromkeys(fields) if f not in identity)]


def record_attributes(cols: Sequence[str]) -> list[str]:
    """The top-level person-record attributes the columns read (none: no record is read)."""
    wanted: list[str] = []
    for col in cols:
        if col == "display_value":
            wanted += ["name", "first_name", "last_name", "email"]  # usecases.lookup.display_value's
        elif col not in MEMBERSHIP_COLUMNS:
            wanted.append(col.split(".", 1)[0])
    return list(dict.fromkeys(wanted))


def value_at(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path (a number part indexes a list); None when absent."""
    node: Any = record
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def row(
    cols: Sequence[str],
    surface: Surface,
    bucket: str,
    member: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    display: str,
) -> list[Any]:
    """One member's values, column by column (JSON-able; None for empty)."""
    pid = str(member["minerva_pid"])
    out: list[Any] = []
    for col in cols:
        if col == "minerva_pid":
            out.append(pid)
        elif col == "uri":
            out.append(f"/{bucket}/person/{pid}/")
        elif col == "display_value":
            out.append(display)
        elif col in ("first_added_at", "last_added_at"):
            at = member.get(col)
            out.append((sheep_time(str(at)) if surface == "sheep" else str(at)) if at else None)
        else:
            out.append(_plain(value_at(record, col)))
    return out


def text(value: Any) -> str:
    """A cell as text: empty for None, JSON for a list or a map."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _csv_cell(value: Any) -> str:
    shown = text(value)
    if isinstance(value, str) and shown.startswith(_FORMULA_START):
        return "'" + shown  # a spreadsheet would run it as a formula (CSV injection)
    return shown


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([_csv_cell(v) for v in r] for r in rows)
    return out.getvalue().encode("utf-8")


def jsonl_bytes(cols: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    lines = (json.dumps(dict(zip(cols, r, strict=True)), ensure_ascii=False, default=str) for r in rows)
    return "".join(line + "\n" for line in lines).encode("utf-8")


class XlsxSheets:
    """Rows into an xlsxwriter workbook (constant_memory: a row is written out as the next begins),
    a new sheet, header repeated, whenever one reaches `sheet_rows` rows."""

    def __init__(self, workbook: Any, cols: Sequence[str], sheet_rows: int = XLSX_SHEET_ROWS) -> None:
        self.workbook, self.cols, self.sheet_rows = workbook, list(cols), sheet_rows
        self.sheet: Any = None
        self.sheets = 0
        self.at = 0

    def _next_sheet(self) -> None:
        self.sheets += 1
        self.sheet = self.workbook.add_worksheet(f"Members {self.sheets}" if self.sheets > 1 else "Members")
        self.sheet.write_row(0, 0, self.cols)
        self.at = 1

    def write(self, values: Sequence[Any]) -> None:
        if self.sheet is None or self.at >= self.sheet_rows:
            self._next_sheet()
        cells = [v if isinstance(v, int | float) and not isinstance(v, bool) else text(v) for v in values]
        self.sheet.write_row(self.at, 0, cells)
        self.at += 1

    def finish(self) -> None:
        if self.sheet is None:
            self._next_sheet()  # an empty segment: the header alone
