"""Every key format of the single table, spelled here and nowhere else.

| item         | pk                 | sk                   | gsi                                          |
|--------------|--------------------|----------------------|----------------------------------------------|
| segment      | ORG#{org}          | SEG#{segment_id}     | gsi1 ORG#{org}#SEGS -> {created_at}#{id}     |
| name lock    | ORG#{org}          | NAME#{name key}      |                                              |
| bucket claim | BUCKET#{bucket}    | BUCKET               |                                              |
| member       | SEG#{segment_id}   | PID#{pid}            | gsi3 PID#{pid} -> MEMBER#{org}#{id} (active) |
| ledger       | SEG#{segment_id}   | LOG#{at}#{req}#{n}   |                                              |
| person       | ORG#{org}#PERSON   | PID#{pid}            | gsi3 PID#{pid} -> PERSON#{org}               |
| signal fact  | PID#{pid}          | SIG#{event_id}       |                                              |
| signal marker| PID#{pid}          | SIGNALS              |                                              |
| feed entry   | SEG#{segment_id}   | SIG#{type}#{first_observed_at}#{event_id} |                         |
| held entry   | SEG#{segment_id}   | HELD#{type}#{first_observed_at}#{event_id} (a deleted segment's) |     |
| event claim  | EVENTID#{event_id} | CLAIM                |                                              |
| api key      | KEY#{sha256}       | KEY                  |                                              |
| api key id   | KEYID#{key_id}     | KEYID                | gsi1 ORG#{org}#KEYS -> {created_at}#{key_id} |
| rule index   | ORG#{org}          | RULEFIELD#{field}    |                                              |
| bulk job     | ORG#{org}          | JOB#{job_id}         |                                              |
| export job   | ORG#{org}          | EXPORT#{export_id}   |  (export ids are time-ordered UUIDs)         |
| fieldset     | ORG#{org}          | FIELDSET#{uid}       |                                              |
| mailchimp    | ORG#{org}          | MAILCHIMP#{segment_id} (a segment's audience sync state) |          |
| org plan     | ORG#{org}          | PLAN                 | (usage plan, API Gateway key id)             |
"""

from __future__ import annotations

import hashlib
from typing import Any

SEGMENT = "SEG#"
PID = "PID#"
LOG = "LOG#"
LOG_END = "LOG#~"  # above every ledger sort key ("~" sorts after digits)
SIG = "SIG#"
SIGNALS_SK = "SIGNALS"
MEMBER = "MEMBER#"
PERSON = "PERSON#"
UUID_LEN = 36
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


def org_members_gsi3_prefix(org_id: str) -> str:
    """gsi3 sort keys of the org's memberships of a PID (other orgs whose id extends this one's
    with '#' share the prefix: readers keep the exact org, see parse_gsi3_sk)."""
    return f"{MEMBER}{org_id}#"


def ledger_sk(at: str, request_id: str, n: int) -> str:
    return f"{LOG}{at}#{request_id}#{n:04d}"


def ledger_prefix(at: str) -> str:
    """Every ledger item written at `at` (one request's chunks)."""
    return f"{LOG}{at}#"


def is_ledger_sk(sk: str) -> bool:
    return sk.startswith(LOG) and sk < LOG_END


def is_ledger_key(pk: str, sk: str) -> bool:
    """A ledger entry's item (in its segment's partition)."""
    return pk.startswith(SEGMENT) and is_ledger_sk(sk)


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


# ------------------------------------------------------------------ usage plans
# An org's plan (standard, pro) and its one API Gateway key, which the org's segments keys name
# (`gateway_key_id` on both key items) so that the authorizer's one GetItem finds it.

ORG_PLAN_SK = "PLAN"


def org_plan_key(org_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), ORG_PLAN_SK)


# ------------------------------------------------------------------ signals
# A signal fact is global per person; a segment's feed holds one entry per signal of a member.
# gsi3 ("who holds this PID, in every org") is keyed PID#{pid}: member items while active
# (MEMBER#{org}#{segment_id}) and person records (PERSON#{org}).


def person_signals_pk(pid: str) -> str:
    return f"{PID}{pid}"


def fact_sk(event_id: str) -> str:
    return f"{SIG}{event_id}"


def fact_key(pid: str, event_id: str) -> dict[str, Any]:
    return key(person_signals_pk(pid), fact_sk(event_id))


def marker_key(pid: str) -> dict[str, Any]:
    """Exists iff the person has at least one signal fact."""
    return key(person_signals_pk(pid), SIGNALS_SK)


def pid_of_signals_pk(pk: str) -> str:
    return pk.removeprefix(PID)


def feed_prefix(signal_type: str) -> str:
    return f"{SIG}{signal_type}#"


def feed_sk(signal_type: str, first_observed_at: str, event_id: str) -> str:
    return f"{feed_prefix(signal_type)}{first_observed_at}#{event_id}"


FEED_END = "#~"  # appended to a time: above every event id at that time ("~" sorts after id characters)


def feed_key(segment_id: str, signal_type: str, first_observed_at: str, event_id: str) -> dict[str, Any]:
    return key(member_pk(segment_id), feed_sk(signal_type, first_observed_at, event_id))


HELD = "HELD#"


def held_key(segment_id: str, signal_type: str, first_observed_at: str, event_id: str) -> dict[str, Any]:
    """A feed entry that reached the segment while it was deleted, kept apart until its restore."""
    return key(member_pk(segment_id), f"{HELD}{feed_sk(signal_type, first_observed_at, event_id)}")


def event_claim_key(event_id: str) -> dict[str, Any]:
    """Which person and content an event id was first stored for (ids are unique per fact)."""
    return key(f"EVENTID#{event_id}", "CLAIM")


def is_feed_key(pk: str, sk: str) -> bool:
    """A segment's feed entry (not a fact: those live under PID#)."""
    return pk.startswith(SEGMENT) and sk.startswith(SIG)


def holders_all_orgs_pk(pid: str) -> str:
    """gsi3 partition: every org's active memberships and person records of a PID."""
    return f"{PID}{pid}"


def member_gsi3_sk(org_id: str, segment_id: str) -> str:
    return f"{MEMBER}{org_id}#{segment_id}"


def person_gsi3_sk(org_id: str) -> str:
    return f"{PERSON}{org_id}"


def parse_gsi3_sk(gsi3sk: str) -> tuple[str, str, str | None] | None:
    """("member", org, segment_id) or ("person", org, None); None for anything else.

    Org ids may contain '#': the segment id is the fixed-length UUID at the end."""
    if gsi3sk.startswith(MEMBER):
        rest = gsi3sk.removeprefix(MEMBER)
        if len(rest) < UUID_LEN + 2 or rest[-UUID_LEN - 1] != "#":
            return None
        return "member", rest[: -UUID_LEN - 1], rest[-UUID_LEN:]
    if gsi3sk.startswith(PERSON):
        return "person", gsi3sk.removeprefix(PERSON), None
    return None


# ------------------------------------------------------------------ rule segments
# The org's rule index: one item per top-level person-record field that some live dynamic or
# hybrid segment reads, holding one attribute per such segment (see store/rule_index.py).
# Segments that read no field at all (no rules: every record matches) are filed under ANY_FIELD,
# read when a record is created.

RULEFIELD = "RULEFIELD#"
ANY_FIELD = "*"
PEOPLE_SUFFIX = "#PERSON"


def rule_field_sk(field: str) -> str:
    return f"{RULEFIELD}{field}"


def rule_field_key(org_id: str, field: str) -> dict[str, Any]:
    return key(org_pk(org_id), rule_field_sk(field))


def field_of_rule_sk(sk: str) -> str:
    return sk.removeprefix(RULEFIELD)


def is_person_key(pk: str, sk: str) -> bool:
    """A person record of an org's people registry (ORG#{org}#PERSON / PID#{pid})."""
    return pk.startswith("ORG#") and pk.endswith(PEOPLE_SUFFIX) and sk.startswith(PID)


def org_of_people_pk(pk: str) -> str:
    return pk.removeprefix("ORG#").removesuffix(PEOPLE_SUFFIX)


def is_segment_key(pk: str, sk: str) -> bool:
    """A segment item (ORG#{org} / SEG#{segment_id}); people partitions end in #PERSON."""
    return pk.startswith("ORG#") and not pk.endswith(PEOPLE_SUFFIX) and sk.startswith(SEGMENT)


def org_of_org_pk(pk: str) -> str:
    return pk.removeprefix("ORG#")


def person_uri_pid(uri: str, bucket: str | None = None) -> str | None:
    """The PID of a SheepCRM person uri `/{bucket}/person/{pid}/` (of `bucket` when given), or None."""
    parts = uri.split("/")
    if len(parts) != 5 or parts[0] or parts[4] or parts[2] != "person" or not parts[3]:
        return None
    if bucket and parts[1] != bucket:
        return None
    return parts[3]


# ------------------------------------------------------------------ bulk actions
# A bulk action on a segment's records (SheepCRM `action/delete`): one item per job, in the org's
# partition, so another org's id is simply not found.

JOB = "JOB#"


def job_sk(job_id: str) -> str:
    return f"{JOB}{job_id}"


def job_key(org_id: str, job_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), job_sk(job_id))


def member_prefix_sk(pid_prefix: str) -> str:
    """Member sort keys of the PIDs starting with `pid_prefix` (begins_with in a segment's partition)."""
    return f"{PID}{pid_prefix}"


# ------------------------------------------------------------------ exports and fieldsets
# An export job and a fieldset live in the org's partition, so another org's id is not found. Export
# ids are UUIDs whose first 48 bits are the creation time in milliseconds (as UUIDv7), so an org's
# jobs sort by time: the newest first, and "the jobs of the last day" is a key range.

EXPORT = "EXPORT#"
FIELDSET = "FIELDSET#"


def export_sk(export_id: str) -> str:
    return f"{EXPORT}{export_id}"


def export_key(org_id: str, export_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), export_sk(export_id))


def export_id_of(sk: str) -> str:
    return sk.removeprefix(EXPORT)


def export_object_key(org_id: str, export_id: str, extension: str) -> str:
    """The S3 key of an export's file: under the org's prefix, so one org's job never names another's file."""
    return f"{org_id}/{export_id}.{extension}"


def fieldset_sk(fieldset_id: str) -> str:
    return f"{FIELDSET}{fieldset_id}"


def fieldset_key(org_id: str, fieldset_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), fieldset_sk(fieldset_id))


# ------------------------------------------------------------------ Mailchimp audience sync
# One item per synced segment, in the org's partition: where in the ledger the sync has got to,
# the Mailchimp static segment's id, and the "sync pending" marker that debounces a burst.

MAILCHIMP = "MAILCHIMP#"


def mailchimp_sync_key(org_id: str, segment_id: str) -> dict[str, Any]:
    return key(org_pk(org_id), f"{MAILCHIMP}{segment_id}")


# ------------------------------------------------------------------ stream changes on FIFO queues


def stream_group(pk: str, sk: str) -> str:
    """The FIFO message group of a changed item: its segment (`SEG#{id}`) for a segment's own
    partition (members, ledger, feed) and for the segment item (ORG#{org} / SEG#{id}), so one
    segment's changes stay in order on a queue; any other item's partition key."""
    if pk.startswith(SEGMENT):
        return pk
    if pk.startswith("ORG#") and sk.startswith(SEGMENT):
        return sk
    return pk


# ------------------------------------------------------------------ webhooks (their own table, WEBHOOKS_TABLE_NAME)
#
# | item          | pk                          | sk                                  |
# |---------------|-----------------------------|-------------------------------------|
# | endpoint      | ORG#{org}#WEBHOOKS          | WEBHOOK#{webhook_id}                |
# | endpoint count| ORG#{org}#WEBHOOKS          | COUNT                               |
# | delivery      | WEBHOOK#{webhook_id}        | DLV#{delivery_id}                   |
# | attempt       | WEBHOOK#{webhook_id}#ATTEMPTS | {at}#{delivery_id}#{n}            |
# | org event     | ORG#{org}#EVENTS            | {at}#{event_id}                     |

WEBHOOK = "WEBHOOK#"
WEBHOOK_COUNT_SK = "COUNT"
DELIVERY = "DLV#"


def webhooks_pk(org_id: str) -> str:
    return f"ORG#{org_id}#WEBHOOKS"


def webhook_sk(webhook_id: str) -> str:
    return f"{WEBHOOK}{webhook_id}"


def webhook_key(org_id: str, webhook_id: str) -> dict[str, Any]:
    return key(webhooks_pk(org_id), webhook_sk(webhook_id))


def webhook_count_key(org_id: str) -> dict[str, Any]:
    return key(webhooks_pk(org_id), WEBHOOK_COUNT_SK)


def delivery_key(webhook_id: str, delivery_id: str) -> dict[str, Any]:
    return key(f"{WEBHOOK}{webhook_id}", f"{DELIVERY}{delivery_id}")


def attempts_pk(webhook_id: str) -> str:
    return f"{WEBHOOK}{webhook_id}#ATTEMPTS"


def attempt_sk(at: str, delivery_id: str, n: int) -> str:
    return f"{at}#{delivery_id}#{n:02d}"


def org_events_pk(org_id: str) -> str:
    return f"ORG#{org_id}#EVENTS"


def org_event_sk(at: str, event_id: str) -> str:
    return f"{at}#{event_id}"


ORG_EVENT_END = "#~"  # appended to a time: above every event id at that time
