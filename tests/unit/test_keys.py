"""Every key format of the single table (store/keys.py), and the round trips readers rely on."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from segments.store import keys

ORG, SEG, PID = "org-a", "11111111-2222-4333-8444-555555555555", "p-abc"
AT = "2024-01-02T03:04:05.000006Z"


def test_key_formats() -> None:
    assert keys.key("A", "B") == {"pk": {"S": "A"}, "sk": {"S": "B"}}
    assert keys.segment_key(ORG, SEG) == keys.key(f"ORG#{ORG}", f"SEG#{SEG}")
    assert keys.segments_gsi_pk(ORG) == f"ORG#{ORG}#SEGS"
    assert keys.segments_gsi_sk(AT, SEG) == f"{AT}#{SEG}"
    assert keys.name_lock_key(ORG, "donors") == keys.key(f"ORG#{ORG}", "NAME#donors")
    assert keys.bucket_key("org-a") == keys.key("BUCKET#org-a", "BUCKET")
    assert keys.member_key(SEG, PID) == keys.key(f"SEG#{SEG}", f"PID#{PID}")
    assert keys.org_members_gsi3_prefix(ORG) == f"MEMBER#{ORG}#"
    assert keys.ledger_sk(AT, "req_1", 7) == f"LOG#{AT}#req_1#0007"
    assert keys.ledger_prefix(AT) == f"LOG#{AT}#"
    assert keys.person_key(ORG, PID) == keys.key(f"ORG#{ORG}#PERSON", f"PID#{PID}")
    assert keys.api_key_by_hash("ab12") == keys.key("KEY#ab12", "KEY")
    assert keys.api_key_by_id("k1") == keys.key("KEYID#k1", "KEYID")
    assert keys.api_keys_gsi_pk(ORG) == f"ORG#{ORG}#KEYS"


def test_members_and_ledger_share_the_segment_partition_but_not_sort_keys() -> None:
    assert keys.member_pk(SEG) == keys.segment_sk(SEG)
    assert not keys.is_ledger_sk(keys.pid_sk(PID))
    assert not keys.is_ledger_sk(keys.LOG_END) and not keys.is_ledger_sk("SEG#x")


def test_ledger_sort_keys_sort_by_time_then_chunk_and_stay_below_log_end() -> None:
    sks = [keys.ledger_sk(AT, "req_1", n) for n in (0, 2, 10, 999)]
    assert sorted(sks) == sks
    assert keys.ledger_sk(AT, "req_9", 0) < keys.ledger_sk("2024-01-02T03:04:05.000007Z", "req_1", 0)
    assert all(keys.is_ledger_sk(sk) and sk < keys.LOG_END and sk.startswith(keys.ledger_prefix(AT)) for sk in sks)


def test_a_name_key_up_to_512_bytes_is_its_own_lock() -> None:
    name = "x" * keys.NAME_KEY_MAX_BYTES
    assert keys.name_lock_sk(name) == f"NAME#{name}"
    assert keys.name_lock_sk("é" * 256) == "NAME#" + "é" * 256  # 512 bytes in UTF-8


def test_a_longer_name_key_is_locked_by_its_sha256() -> None:
    for name in ("x" * 513, "€" * 171, "\U0001d518" * 129):  # bytes, not characters, count
        digest = hashlib.sha256(name.encode()).hexdigest()
        assert keys.name_lock_sk(name) == f"NAME#sha256:{digest}"
    assert keys.name_lock_sk("x" * 513) != keys.name_lock_sk("x" * 514)
    assert len(keys.name_lock_sk("\U0001d518" * 5000).encode()) < 1024  # DynamoDB's sort key limit


@given(st.text(max_size=300))
def test_every_name_key_has_a_lock_within_the_sort_key_limit(name: str) -> None:
    sk = keys.name_lock_sk(name)
    assert sk.startswith("NAME#") and len(sk.encode()) <= len(b"NAME#") + keys.NAME_KEY_MAX_BYTES


@given(st.text(), st.uuids().map(str), st.text(alphabet="0123456789-:.TZ", max_size=30))
def test_ids_round_trip_through_their_keys(pid: str, segment_id: str, created_at: str) -> None:
    assert keys.pid_of(keys.pid_sk(pid)) == pid
    assert keys.segment_id_of(keys.segment_sk(segment_id)) == segment_id
    assert keys.segment_id_of_gsi_sk(keys.segments_gsi_sk(created_at, segment_id)) == segment_id
