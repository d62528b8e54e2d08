"""Opaque cursors: urlsafe base64 of JSON bound to what they page (kind) and whose (scope).

A cursor only carries a position; every use case validates the position it gets back (shape,
range) before it reaches the store, so a forged cursor is a 422, never a store error."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from segments import errors

INVALID = "Invalid cursor"


def encode(kind: str, scope: str, position: Any) -> str:
    raw = json.dumps({"k": kind, "s": scope, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, kind: str, scope: str) -> Any:
    """The position of a cursor made by encode() for the same kind and scope; else ValidationFailed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.ValidationFailed(INVALID) from exc
    if not isinstance(data, dict) or data.get("k") != kind or data.get("s") != scope or "p" not in data:
        raise errors.ValidationFailed(INVALID)
    return data["p"]
