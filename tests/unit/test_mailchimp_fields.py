"""Person-record fields as Mailchimp merge fields (pure)."""

from decimal import Decimal

from segments.mailchimp.fields import email_of, merge_fields, merge_tag


def test_default_tags_and_derived_ones() -> None:
    assert [merge_tag(p) for p in ("first_name", "last_name", "address.city", "phone", "membership_level")] == [
        "FNAME",
        "LNAME",
        "CITY",
        "PHONE",
        "MEMBERSHIP",
    ]


def test_merge_fields_take_the_paths_given() -> None:
    record = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address": {"city": "London", "lines": ["1 Main St"]},
        "score": Decimal("42"),
        "ratio": Decimal("0.5"),
        "vip": True,
        "tags": ["a"],
    }
    assert merge_fields(record) == {"FNAME": "Ada", "LNAME": "Lovelace"}
    paths = ["first_name", "address.city", "address.lines.0", "score", "ratio", "vip", "tags", "missing"]
    assert merge_fields(record, paths) == {
        "FNAME": "Ada",
        "CITY": "London",
        "LINES": "1 Main St",
        "SCORE": "42",
        "RATIO": "0.5",
    }


def test_email_of_takes_the_first_address_that_looks_like_one() -> None:
    assert email_of({"email": " Ada@Example.org "}) == "Ada@Example.org"
    assert email_of({"email": "not an email", "email_address": "a@b.co"}) == "a@b.co"
    assert email_of({"email": None}) is None and email_of({}) is None
