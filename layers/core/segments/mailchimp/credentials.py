"""Each org's Mailchimp credentials: one Secrets Manager secret, `{MAILCHIMP_SECRET_PREFIX}{org_id}`,
whose value is JSON {api_key, audience_id, status_if_new}. Never in the table, never logged (the
key's repr is masked)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from botocore.exceptions import ClientError

from segments import aws, errors
from segments.config import get_settings

Status = Literal["subscribed", "transactional", "pending", "unsubscribed"]
STATUSES: tuple[Status, ...] = ("transactional", "subscribed", "pending", "unsubscribed")


@dataclass(frozen=True)
class Credentials:
    api_key: str = field(repr=False)
    audience_id: str
    status_if_new: Status = "transactional"

    @property
    def data_centre(self) -> str | None:
        """`us6` of a key `...-us6` (Mailchimp's keys end with their data centre)."""
        _, sep, dc = self.api_key.rpartition("-")
        return dc if sep and dc.isalnum() else None

    @property
    def base_url(self) -> str:
        """MAILCHIMP_BASE_URL when set (a local server), else the key's data centre's API."""
        override = get_settings().mailchimp_base_url
        if override:
            if not override.startswith(("http://", "https://")):
                raise errors.ValidationFailed("MAILCHIMP_BASE_URL must be an http(s) URL")
            return override.rstrip("/")
        if self.data_centre is None:
            raise errors.ValidationFailed("The Mailchimp API key has no data centre suffix (e.g. ...-us6)")
        return f"https://{self.data_centre}.api.mailchimp.com/3.0"


def secret_name(org_id: str) -> str:
    return f"{get_settings().mailchimp_secret_prefix}{org_id}"


def load(org_id: str) -> Credentials | None:
    """The org's credentials, None when it has none."""
    try:
        value = aws.secrets().get_secret_value(SecretId=secret_name(org_id))["SecretString"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise errors.Retryable("Secrets Manager did not give the org's Mailchimp credentials") from exc
    data = json.loads(value)
    return Credentials(str(data["api_key"]), str(data["audience_id"]), data.get("status_if_new", "transactional"))


def save(org_id: str, credentials: Credentials) -> str:
    """Create or replace the org's secret; its name."""
    name = secret_name(org_id)
    value = json.dumps(
        {
            "api_key": credentials.api_key,
            "audience_id": credentials.audience_id,
            "status_if_new": credentials.status_if_new,
        }
    )
    client = aws.secrets()
    try:
        client.create_secret(Name=name, SecretString=value, Description=f"Mailchimp audience sync of org {org_id}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
            raise
        client.put_secret_value(SecretId=name, SecretString=value)
    return name
