"""Configuration, read once from the environment (the functions' variables in template.yaml)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(min_length=1)
    idempotency_table_name: str = "IdempotencyTable"
    max_pids_per_request: int = Field(default=10_000, ge=1)
    pid_validation: Literal["format", "registry"] = "format"
    members_page_size: int = Field(default=5_000, ge=1)
    idempotency_ttl_seconds: int = 24 * 3600
    # A member-writing request holds the segment's lease at most this long; it must exceed the
    # function timeout (28 s) so that a lease can never outlive its holder.
    lease_seconds: int = 60
    lease_wait_seconds: float = 20.0
    region: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get("TABLE_NAME", "SegmentsTable"),
        idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME", "IdempotencyTable"),
        max_pids_per_request=int(env.get("MAX_PIDS_PER_REQUEST", "10000")),
        pid_validation=env.get("PID_VALIDATION", "format"),  # type: ignore[arg-type]
        members_page_size=int(env.get("MEMBERS_PAGE_SIZE", "5000")),
        lease_wait_seconds=float(env.get("LEASE_WAIT_SECONDS", "20")),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    )
