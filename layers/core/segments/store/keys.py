"""Every key format of the single table, spelled here and nowhere else.

| item         | pk                 | sk                   | gsi                                          |
|--------------|--------------------|----------------------|----------------------------------------------|
| segment      | ORG#{org}          | SEG#{segment_id}     | gsi1 ORG#{org}#SEGS -> {created_at}#{id}     |
| name lock    | ORG#{org}          | NAME#{name key}      |                                              |
| bucket claim | BUCKET#{bucket}    | BUCKET               |                                              |
| member       | SEG#{segment_id}   | PID#{pid}            | gsi2 ORG#{org}#PID#{pid} -> SEG#{id} (active)|
| ledger       | SEG#{segment_id}   | LOG#{at}#{req}#{n}   |                                              |
| person       | ORG#{org}#PERSON   | PID#{pid}            |                                              |
| api key      | KEY#{sha256}       | KEY                  |                                              |
| api key id   | KEYID#{key_id}     | KEYID                | gsi1 ORG#{org}#KEYS -> {created_at}#{key_id} |
"""

from __future__ import annotations

import hashlib
from typing import Any

SEGMENT = "SEG#"
PID = "PID#"
LOG = "LOG#"
LOG_END = "LOG#~"  # above every ledger sort key ("~" sorts after digits)
NAME = "NAME#"
# DynamoDB allows 1,024 bytes of sort key; a longer name key is stored as its digest.
NAME_KEY_MAX_BYTES = 512


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


# ------------------------------------------------------------------ organisations and segments


def org_pk(org_id: str) -> str:
    return f"ORG#{org_id}"


def segment_sk(segment_id: str) -> str:
    return f"{SEGMENT}{segment_id}"


def segment_id_of(sk: str) -> str:
    return sk.removeprefix(SEGMENT)


def segment_key(org_id: str, segment_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), segment_sk(segment_id))


def segments_gsi_pk(org_id: str) -> str:
    return f"ORG#{org_id}#SEGS"


def segments_gsi_sk(created_at: str, segment_id: str) -> str:
    return f"{created_at}#{segment_id}"


def segment_id_of_gsi_sk(gsi1sk: str) -> str:
    return gsi1sk.rsplit("#", 1)[-1]


def name_lock_sk(name_key: str) -> str:
    """NAME#{name key}; a key too long for a sort key (4-byte or case-fold-expanding characters) is
    replaced by its SHA-256, so any valid name has a lock of bounded size."""
    if len(name_key.encode("utf-8")) > NAME_KEY_MAX_BYTES:
        return f"{NAME}sha256:{hashlib.sha256(name_key.encode('utf-8')).hexdigest()}"
    return f"{NAME}{name_key}"


def name_lock_key(org_id: str, name_key: str) -> dict[str, Any]:
    return key(org_pk(org_id), name_lock_sk(name_key))


def bucket_pk(bucket: str) -> str:
    return f"BUCKET#{bucket}"


BUCKET_SK = "BUCKET"


def bucket_key(bucket: str) -> dict[str, Any]:
    return key(bucket_pk(bucket), BUCKET_SK)


# ------------------------------------------------------------------ members and ledger


def member_pk(segment_id: str) -> str:
    return f"{SEGMENT}{segment_id}"


def pid_sk(pid: str) -> str:
    return f"{PID}{pid}"


def pid_of(sk: str) -> str:
    return sk.removeprefix(PID)


def member_key(segment_id: str, pid: str) -> dict[str, Any]:
    return key(member_pk(segment_id), pid_sk(pid))


def holders_gsi_pk(org_id: str, pid: str) -> str:
    """gsi2: the org's segments that hold a PID (present only while a member)."""
    return f"ORG#{org_id}#PID#{pid}"


def ledger_sk(at: str, request_id: str, n: int) -> str:
    return f"{LOG}{at}#{request_id}#{n:04d}"


def ledger_prefix(at: str) -> str:
    """Every ledger item written at `at` (one request's chunks)."""
    return f"{LOG}{at}#"


def is_ledger_sk(sk: str) -> bool:
    return sk.startswith(LOG) and sk < LOG_END


# ------------------------------------------------------------------ people registry


def people_pk(org_id: str) -> str:
    return f"ORG#{org_id}#PERSON"


def person_key(org_id: str, pid: str) -> dict[str, Any]:
    return key(people_pk(org_id), pid_sk(pid))


# ------------------------------------------------------------------ API keys


def api_key_hash_pk(key_hash: str) -> str:
    return f"KEY#{key_hash}"


API_KEY_HASH_SK = "KEY"


def api_key_by_hash(key_hash: str) -> dict[str, Any]:
    return key(api_key_hash_pk(key_hash), API_KEY_HASH_SK)


def api_key_id_pk(key_id: str) -> str:
    return f"KEYID#{key_id}"


API_KEY_ID_SK = "KEYID"


def api_key_by_id(key_id: str) -> dict[str, Any]:
    return key(api_key_id_pk(key_id), API_KEY_ID_SK)


def api_keys_gsi_pk(org_id: str) -> str:
    return f"ORG#{org_id}#KEYS"
