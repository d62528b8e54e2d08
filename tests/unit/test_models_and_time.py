"""Names, PIDs, the Actor (models.py) and the time and id formats (timefmt.py)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from segments import timefmt
from segments.models import NAME_MAX, Actor, NewSegment, clean_name, is_valid_pid, name_key

# ------------------------------------------------------------------ names


def test_clean_name_trims_and_keeps_the_spelling() -> None:
    assert clean_name("  Big Donors\t") == "Big Donors"
    assert clean_name(" " + "x" * NAME_MAX + " ") == "x" * NAME_MAX
    assert NewSegment(name="  Ünïcode ").name == "Ünïcode"


@pytest.mark.parametrize("name", ["", "   ", "\n\t", "x" * (NAME_MAX + 1)])
def test_clean_name_refuses_empty_and_overlong_names(name: str) -> None:
    with pytest.raises(ValueError, match="1-255 characters"):
        clean_name(name)
    with pytest.raises(ValidationError):
        NewSegment(name=name)


def test_name_key_is_trimmed_nfc_casefolded() -> None:
    composed, decomposed = "Caf\u00e9", "Cafe\u0301"
    assert composed != decomposed and name_key(composed) == name_key(decomposed) == "café"
    assert name_key("  STRASSE ") == name_key("straße") == "strasse"
    assert unicodedata.is_normalized("NFC", name_key("A\u030a"))


# ------------------------------------------------------------------ PIDs


@pytest.mark.parametrize("pid", ["p-a", "p-0", "p-a1B2c3", "p-" + "Z9" * 32])
def test_valid_pids(pid: str) -> None:
    assert is_valid_pid(pid)


@pytest.mark.parametrize(
    "pid",
    [
        "",
        "p-",
        "p_abc",
        "P-abc",
        "x-abc",
        "p-abc-def",
        "p-" + "a" * 65,
        " p-abc",
        "p-abc ",
        "p-ä",
        None,
        7,
        b"p-abc",
        ["p-abc"],
    ],
)
def test_invalid_pids(pid: object) -> None:
    assert not is_valid_pid(pid)


def test_a_trailing_newline_is_not_part_of_a_valid_pid() -> None:
    # `$` also matches before a final newline; the contract's pattern means the end of the string.
    assert not is_valid_pid("p-abc\n")
    assert is_valid_pid("p-abc")


# ------------------------------------------------------------------ Actor


def test_actor_defaults_to_the_api_and_is_frozen() -> None:
    actor = Actor(org_id="org-a", bucket="org-a", request_id="req_1")
    assert actor.reason == "api" and actor.key_id is None
    assert actor == Actor(org_id="org-a", bucket="org-a", request_id="req_1", reason="api")
    assert hash(actor) == hash(Actor(org_id="org-a", bucket="org-a", request_id="req_1"))
    with pytest.raises(ValidationError):
        actor.org_id = "org-b"  # type: ignore[misc]


@pytest.mark.parametrize("reason", ["api", "rule", "event", "admin"])
def test_actor_reasons(reason: str) -> None:
    assert Actor(org_id="o", bucket="b", request_id="r", reason=reason).reason == reason  # type: ignore[arg-type]


def test_actor_refuses_unknown_reasons_and_missing_ids() -> None:
    with pytest.raises(ValidationError):
        Actor(org_id="o", bucket="b", request_id="r", reason="http")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Actor(org_id="o", bucket="b")  # type: ignore[call-arg]


# ------------------------------------------------------------------ time and ids


def test_iso_is_utc_with_microseconds_and_z() -> None:
    assert timefmt.iso(datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2024-01-02T03:04:05.000006Z"
    plus_two = timezone(timedelta(hours=2))
    assert timefmt.iso(datetime(2024, 1, 1, 1, 0, tzinfo=plus_two)) == "2023-12-31T23:00:00.000000Z"


def test_now_is_aware_utc() -> None:
    assert timefmt.now().utcoffset() == timedelta(0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", timefmt.iso(timefmt.now()))


def test_sheep_time_drops_only_the_zone() -> None:
    assert timefmt.sheep_time("2024-01-02T03:04:05.000006Z") == "2024-01-02T03:04:05.000006"
    assert timefmt.sheep_time("2024-01-02T03:04:05.000006") == "2024-01-02T03:04:05.000006"


def test_request_ids_follow_api_gateways_and_are_fresh_otherwise() -> None:
    assert timefmt.request_id_from("C0FFEE00-1234-4abc-8DEF-0123456789ab") == "req_c0ffee0012344abc8def0123456789ab"
    made = [timefmt.request_id_from(raw) for raw in (None, "", "not-a-uuid", "c0ffee", "g" * 32, "a" * 33)]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", r) for r in made)
    assert len(set(made)) == len(made)
