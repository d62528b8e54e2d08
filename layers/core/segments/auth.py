"""API keys: creation (shown once, stored as SHA-256), revocation, and the authorizers' decision;
and what operators alone may do (system segments)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from segments import errors
from segments.models import (
    Actor,
    NewSegment,
    check_org_and_bucket,
    storable_segment,
    valid_bucket,
    valid_org_id,
)
from segments.observability import logger
from segments.store import api_keys
from segments.timefmt import iso, now

if TYPE_CHECKING:
    from segments.store.segments import SegmentRecord

KEY_PREFIX = "sk_seg_"


@dataclass(frozen=True)
class ApiKeyCreated:
    key_id: str
    api_key: str
    org_id: str
    bucket: str
    label: str | None = None


@dataclass(frozen=True)
class Principal:
    key_id: str
    org_id: str
    bucket: str
    gateway_key_id: str | None = None  # the org's API Gateway key (segments.external.plans), its usage plan's meter


def _check_org_and_bucket(org_id: str, bucket: str) -> None:
    try:
        check_org_and_bucket(org_id, bucket)
    except ValueError as exc:
        raise errors.ValidationFailed(str(exc)) from None


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def create_api_key(
    org_id: str, bucket: str, label: str | None = None, gateway_key_id: str | None = None
) -> ApiKeyCreated:
    """Mint a random key (256 bits), store only its hash, and return the key once. `gateway_key_id`:
    the org's API Gateway key (segments.external.plans), when it has one already."""
    _check_org_and_bucket(org_id, bucket)
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    api_keys.put(
        {
            "key_id": key_id,
            "key_hash": hash_key(api_key),
            "org_id": org_id,
            "bucket": bucket,
            "label": label,
            "status": "active",
            "created_at": iso(now()),
            **({"gateway_key_id": gateway_key_id} if gateway_key_id else {}),
        }
    )
    return ApiKeyCreated(key_id=key_id, api_key=api_key, org_id=org_id, bucket=bucket, label=label)


def create_system_segment(org_id: str, bucket: str, name: str, description: str | None = None) -> SegmentRecord:
    """Create a system segment (operators only: API callers can neither create, rename nor delete one)
    through the same use case as the API, acting with reason "admin". The bucket must be the org's
    (or not yet claimed by any org)."""
    from pydantic import ValidationError

    from segments.store import limits
    from segments.usecases import segments as usecase

    _check_org_and_bucket(org_id, bucket)
    owner = api_keys.bucket_owner(bucket)
    if owner is not None and owner != org_id:
        raise errors.Conflict(f"Bucket {bucket} belongs to another organisation")
    try:
        new = storable_segment(
            NewSegment(name=name, description=description, source="admin", segment_type="static", system_segment=True)
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "segment"
        raise errors.ValidationFailed(f"invalid {field}: {first['msg'].removeprefix('Value error, ')}") from exc
    except limits.LimitExceeded as exc:
        raise errors.ValidationFailed(exc.describe()) from exc
    actor = Actor(org_id=org_id, bucket=bucket, request_id=f"admin_{uuid.uuid4().hex}", reason="admin")
    try:
        return usecase.create_segment(actor, new)
    except errors.NameTaken as exc:
        raise errors.Conflict(exc.message) from exc


def revoke_api_key(key_id: str) -> api_keys.ApiKeyRecord:
    """Revoke a key (both its items); the key as revoked."""
    record = api_keys.by_id(key_id)
    if record is None:
        raise errors.NotFound(f"API key {key_id} not found")
    at = iso(now())
    api_keys.set_status(key_id, record.key_hash, "revoked", at)
    return replace(record, status="revoked", updated_at=at)


def list_api_keys(org_id: str) -> list[api_keys.ApiKeyRecord]:
    """The org's keys, oldest first (records: whoever shows them renders what it shows)."""
    return api_keys.list_for_org(org_id)


def authenticate(api_key: str | None) -> Principal | None:
    """The key's principal, or None for a missing, unknown or revoked key."""
    if not api_key or len(api_key) > 512:
        return None
    record = api_keys.by_hash(hash_key(api_key))
    if record is None or record.status != "active":
        return None
    if not valid_org_id(record.org_id) or not valid_bucket(record.bucket):
        # A key minted before org ids were checked, for an org id no storage key can hold safely.
        logger.warning("API key refused: its org id or bucket is malformed", extra={"key_id": record.key_id})
        return None
    return Principal(
        key_id=record.key_id,
        org_id=str(record.org_id),
        bucket=str(record.bucket),
        gateway_key_id=record.gateway_key_id,
    )


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _api_arn_prefix(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:apiId/stage/METHOD/path -> ...:apiId/stage"""
    arn, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    return f"{arn}:execute-api:{'/'.join(parts[:2])}"


def policy(principal: Principal, method_arn: str, resources: list[str]) -> dict[str, Any]:
    """An Allow policy for `resources` (relative to the API stage), with the principal as context.

    The authorizer result is cached per key for the TTL, so the policy must cover every route the
    key may use, and nothing else. `usageIdentifierKey` is the org's API Gateway key: both APIs take
    their API key from the authorizer, and meter and throttle each org by its usage plan. A key of an
    org without one gets no usageIdentifierKey, and API Gateway refuses the request (403).
    """
    prefix = _api_arn_prefix(method_arn)
    if principal.gateway_key_id is None:
        logger.warning(
            "the key's org has no usage plan key: `segments-admin set-plan --org ORG --plan standard` gives it one",
            extra={"key_id": principal.key_id, "org_id": principal.org_id},
        )
    return {
        "principalId": principal.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": [f"{prefix}/{r}" for r in resources],
                }
            ],
        },
        "context": {"org_id": principal.org_id, "bucket": principal.bucket, "key_id": principal.key_id},
        **({"usageIdentifierKey": principal.gateway_key_id} if principal.gateway_key_id else {}),
    }


def minerva_policy(principal: Principal, method_arn: str) -> dict[str, Any]:
    return policy(principal, method_arn, ["*/v2/*", "*/v1/*"])


def sheep_policy(principal: Principal, method_arn: str) -> dict[str, Any]:
    """Only the key's own bucket: another bucket's paths are denied (API Gateway answers 403)."""
    return policy(principal, method_arn, [f"*/segments/v2/{principal.bucket}", f"*/segments/v2/{principal.bucket}/*"])
