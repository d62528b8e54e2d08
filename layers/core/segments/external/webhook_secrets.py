"""Webhook signing secrets: made here, stored only as KMS ciphertext, decrypted where a delivery is signed.

A secret is Standard Webhooks' `whsec_` + base64 of 32 random bytes. It is encrypted under the
stack's key (WEBHOOK_KMS_KEY_ID) with an encryption context naming its org and endpoint, so a
ciphertext copied onto another endpoint does not decrypt. Plaintext is never logged nor stored; the
delivery function keeps what it decrypted in memory, by ciphertext, so a warm container calls KMS
once per secret, not once per delivery.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections import OrderedDict

from botocore.exceptions import BotoCoreError, ClientError

from segments import aws, errors
from segments.config import get_settings

PREFIX = "whsec_"
SECRET_BYTES = 32
CACHE_SIZE = 1024

_lock = threading.Lock()
_plain: OrderedDict[str, str] = OrderedDict()  # ciphertext -> secret, least recently used first


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def _context(org_id: str, webhook_id: str) -> dict[str, str]:
    return {"org_id": org_id, "webhook_id": webhook_id}


def encrypt(org_id: str, webhook_id: str, secret: str) -> str:
    """The secret's ciphertext (base64), bound to its org and endpoint."""
    key_id = get_settings().webhook_kms_key_id
    if not key_id:
        raise RuntimeError("WEBHOOK_KMS_KEY_ID is not set: webhook secrets are never stored in the clear")
    try:
        blob = aws.kms().encrypt(
            KeyId=key_id, Plaintext=secret.encode(), EncryptionContext=_context(org_id, webhook_id)
        )["CiphertextBlob"]
    except (ClientError, BotoCoreError) as exc:
        raise errors.Retryable("The key service did not answer; retry") from exc
    return base64.b64encode(blob).decode()


def decrypt(org_id: str, webhook_id: str, ciphertext: str, *, cached: bool = True) -> str:
    """The secret of `ciphertext`; `cached` (deliveries) keeps it in memory for the next one,
    without (the one response that shows a secret) nothing is kept."""
    with _lock:
        found = _plain.get(ciphertext) if cached else None
        if found is not None:
            _plain.move_to_end(ciphertext)
            return found
    try:
        plain = aws.kms().decrypt(
            CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=_context(org_id, webhook_id)
        )["Plaintext"]
    except (ClientError, BotoCoreError) as exc:
        raise errors.Retryable("The key service did not answer; retry") from exc
    secret = plain.decode()
    if not cached:
        return secret
    with _lock:
        _plain[ciphertext] = secret
        while len(_plain) > CACHE_SIZE:
            _plain.popitem(last=False)
    return secret


def reset() -> None:
    with _lock:
        _plain.clear()


aws.on_reset(reset)
