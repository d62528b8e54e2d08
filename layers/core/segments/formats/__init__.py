"""File formats, pure (no storage, no AWS): an export's rows and how CSV, JSON lines and XLSX write
them (`export_formats`), a minimal PDF table writer (`pdf`)."""
