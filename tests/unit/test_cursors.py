"""Opaque cursors (cursors.py): bound to a kind and a scope; anything else is a 422, never a crash."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segments import cursors, errors

SCOPE = "11111111-2222-4333-8444-555555555555"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def raw_token(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_invalid(token: str, kind: str = "members", scope: str = SCOPE) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        cursors.decode(token, kind, scope)
    assert caught.value.message == cursors.INVALID and caught.value.kind == "validation"


@given(json_values, st.text(min_size=1, max_size=20), st.text(max_size=40))
def test_any_json_position_round_trips_for_its_kind_and_scope(position: Any, kind: str, scope: str) -> None:
    token = cursors.encode(kind, scope, position)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token)  # URL-safe, unpadded
    assert cursors.decode(token, kind, scope) == position


@pytest.mark.parametrize("position", [None, 0, "PID#p-1", ["LOG#x", 3], {"after": "p-9"}])
def test_a_cursor_is_refused_for_another_kind_or_scope(position: Any) -> None:
    token = cursors.encode("members", SCOPE, position)
    assert cursors.decode(token, "members", SCOPE) == position
    assert_invalid(token, kind="history")
    assert_invalid(token, scope=SCOPE.replace("1", "9"))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nope",
        "!!!!",
        "a",
        "abc=def",
        raw_token(b"\xff\xfe\x00"),
        raw_token(b"{not json"),
        raw_token(b"[" * 100_000 + b"]" * 100_000),
    ],
)
def test_garbage_is_an_invalid_cursor(token: str) -> None:
    assert_invalid(token)


@pytest.mark.parametrize(
    "data",
    [[1, 2], 42, "members", None, True, {"k": "members", "s": SCOPE}, {"k": "members", "p": 1}, {"s": SCOPE, "p": 1}],
)
def test_json_that_is_not_a_whole_cursor_is_invalid(data: Any) -> None:
    assert_invalid(raw_token(data))


@given(st.text(max_size=200))
def test_decoding_anything_returns_a_position_or_raises_validation_failed(token: str) -> None:
    try:
        cursors.decode(token, "members", SCOPE)
    except errors.ValidationFailed as exc:
        assert exc.message == cursors.INVALID
