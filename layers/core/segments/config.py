"""Configuration: one model of every environment variable the functions and `segments-admin` read,
built from os.environ once per process (get_settings, cached; aws.reset() forgets it).

Each field names its variable (its alias) and carries the one default. Variables read by libraries
themselves (POWERTOOLS_*, LOG_LEVEL, AWS_ENDPOINT_URL, credentials) are not in the model.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    # The segments table, and the table of Idempotency-Key records.
    table_name: str = Field(default="SegmentsTable", min_length=1, alias="TABLE_NAME")
    idempotency_table_name: str = Field(default="IdempotencyTable", alias="IDEMPOTENCY_TABLE_NAME")
    # PIDs accepted by one add/remove (413 above).
    max_pids_per_request: int = Field(default=10_000, ge=1, alias="MAX_PIDS_PER_REQUEST")
    # `format`: PIDs checked by pattern; `registry`: they must also exist in the org's people registry.
    pid_validation: Literal["format", "registry"] = Field(default="format", alias="PID_VALIDATION")
    # Members returned by one page of the members listing.
    members_page_size: int = Field(default=5_000, ge=1, alias="MEMBERS_PAGE_SIZE")
    # How long a member-writing request waits for the segment's lease before it answers "busy".
    lease_wait_seconds: float = Field(default=20.0, alias="LEASE_WAIT_SECONDS")
    # The region of every client (AWS_REGION as Lambda sets it, else AWS_DEFAULT_REGION).
    region: str | None = Field(default=None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # Rule rebuilds: the queue that carries their chunks, and the people read per chunk (at least 1).
    rebuild_queue_url: str | None = Field(default=None, alias="REBUILD_QUEUE_URL")
    rebuild_chunk_size: int = Field(default=500, alias="REBUILD_CHUNK_SIZE")
    # SheepCRM bulk delete (action/delete): the queue that carries a job's chunks.
    bulk_delete_queue_url: str | None = Field(default=None, alias="BULK_DELETE_QUEUE_URL")
    # The bus events go out on; unset, the publisher uses the account's `default` bus and
    # `segments-admin publish-event` asks for --bus.
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")
    # `segments-admin import-people`: the person-events queue when --queue is not given.
    person_events_queue_url: str | None = Field(default=None, alias="PERSON_EVENTS_QUEUE_URL")
    # Mailchimp audience sync: the API's base URL (unset: from the key's data centre, `...-us6` ->
    # https://us6.api.mailchimp.com/3.0; set: a local server), the prefix of the orgs' credential
    # secrets (`{prefix}{org_id}` in Secrets Manager), the queue of sync requests, and how long a
    # sync waits after the first membership change of a burst (SQS DelaySeconds, 0-900).
    mailchimp_base_url: str | None = Field(default=None, alias="MAILCHIMP_BASE_URL")
    mailchimp_secret_prefix: str = Field(default="segments/mailchimp/", alias="MAILCHIMP_SECRET_PREFIX")
    mailchimp_sync_queue_url: str | None = Field(default=None, alias="MAILCHIMP_SYNC_QUEUE_URL")
    mailchimp_sync_delay_seconds: int = Field(default=30, ge=0, le=900, alias="MAILCHIMP_SYNC_DELAY_SECONDS")

    # Usage plans (`segments-admin create-api-key --plan`, `set-plan`): each plan's API Gateway
    # usage plan, by id (the stack outputs StandardUsagePlanId, ProUsagePlanId) or by name (the
    # defaults are the names the local stack gives them).
    usage_plan_standard: str = Field(default="StandardUsagePlan", min_length=1, alias="USAGE_PLAN_STANDARD")
    usage_plan_pro: str = Field(default="ProUsagePlan", min_length=1, alias="USAGE_PLAN_PRO")

    # The table's stream, dispatched (StreamDispatcherFunction): the FIFO queue of each concern that
    # reads stream changes through a queue rather than the stream (docs/decisions.md: stream readers).
    publisher_queue_url: str | None = Field(default=None, alias="PUBLISHER_QUEUE_URL")
    signal_feed_queue_url: str | None = Field(default=None, alias="SIGNAL_FEED_QUEUE_URL")

    # Webhooks (docs/api.md#webhooks): the table of endpoints, deliveries and the org's events; the
    # KMS key their signing secrets are encrypted with; the queue of deliveries; endpoints an org may
    # register; the retry schedule (seconds before each retry after the first attempt); the POST's
    # timeout; how long an endpoint may fail everything before it is disabled; how long a rotated-out
    # secret keeps signing. WEBHOOK_ALLOW_PRIVATE_URLS (local stack and tests only) allows http and
    # private, loopback or link-local addresses.
    webhooks_table_name: str = Field(default="WebhooksTable", min_length=1, alias="WEBHOOKS_TABLE_NAME")
    webhook_kms_key_id: str | None = Field(default=None, alias="WEBHOOK_KMS_KEY_ID")
    webhook_delivery_queue_url: str | None = Field(default=None, alias="WEBHOOK_DELIVERY_QUEUE_URL")
    webhook_limit_per_org: int = Field(default=20, ge=1, alias="WEBHOOK_LIMIT_PER_ORG")
    webhook_retry_schedule: tuple[int, ...] = Field(
        default=(5, 300, 1800, 7200, 18000, 36000, 36000), alias="WEBHOOK_RETRY_SCHEDULE"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30, alias="WEBHOOK_TIMEOUT_SECONDS")
    webhook_disable_after_seconds: int = Field(default=5 * 86400, ge=0, alias="WEBHOOK_DISABLE_AFTER_SECONDS")
    webhook_rotation_overlap_seconds: int = Field(default=86400, ge=0, alias="WEBHOOK_ROTATION_OVERLAP_SECONDS")
    webhook_allow_private_urls: bool = Field(default=False, alias="WEBHOOK_ALLOW_PRIVATE_URLS")
    # Exports (docs/api.md#exports): the queue of their chunks, the bucket of their files, how long a
    # presigned URL lasts, how many jobs an org may run at once (429 above), the bytes a chunk writes
    # before it uploads them as one multipart part (S3's minimum is 5 MiB), the members read per
    # Query, and the most rows a PDF holds.
    export_queue_url: str | None = Field(default=None, alias="EXPORT_QUEUE_URL")
    exports_bucket: str | None = Field(default=None, alias="EXPORTS_BUCKET")
    export_url_ttl_seconds: int = Field(default=900, ge=1, le=604_800, alias="EXPORT_URL_TTL_SECONDS")
    export_max_concurrent: int = Field(default=3, ge=1, alias="EXPORT_MAX_CONCURRENT")
    export_part_bytes: int = Field(default=5 * 1024 * 1024, ge=1, alias="EXPORT_PART_BYTES")
    export_page_size: int = Field(default=1_000, ge=1, le=10_000, alias="EXPORT_PAGE_SIZE")
    export_pdf_max_rows: int = Field(default=2_000, ge=1, alias="EXPORT_PDF_MAX_ROWS")

    # Fixed, not read from the environment.
    idempotency_ttl_seconds: int = 24 * 3600
    # A member-writing request holds the segment's lease at most this long; it must exceed the
    # function timeout (28 s) so that a lease can never outlive its holder.
    lease_seconds: int = 60

    @field_validator("region", "mailchimp_base_url", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: object) -> object:
        return value or None

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _seconds_list(cls, value: object) -> object:
        """`5,300,1800`: comma-separated seconds (an empty string: no retry)."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                value = tuple(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError("must be comma-separated whole seconds, e.g. 5,300,1800") from exc
        if any(int(v) < 0 for v in value):  # type: ignore[attr-defined]
            raise ValueError("must not hold a negative number of seconds")
        return value

    @field_validator("rebuild_chunk_size")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        return max(1, value)


def variables() -> tuple[str, ...]:
    """Every environment variable the model reads."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names += [str(choice) for choice in alias.choices]
        elif alias:
            names.append(str(alias))
    return tuple(names)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data = {name: os.environ[name] for name in variables() if name in os.environ}
    if not data.get("AWS_REGION"):  # an empty AWS_REGION does not hide AWS_DEFAULT_REGION
        data.pop("AWS_REGION", None)
    return Settings.model_validate(data)
