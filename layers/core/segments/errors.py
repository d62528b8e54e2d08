"""Domain errors. Each surface maps them to its own HTTP status and body, once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a caller may see; `message` is safe to show."""

    kind = "internal"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError):
    kind = "validation"


class NotFound(DomainError):
    kind = "not_found"


class NameTaken(DomainError):
    kind = "conflict"

    def __init__(self, name: str) -> None:
        super().__init__(f"Segment name {name} already exists")
        self.name = name


class Conflict(DomainError):
    kind = "conflict"


class PayloadTooLarge(DomainError):
    kind = "too_large"


class TooMany(DomainError):
    """A per-org limit of concurrent work (exports running at once) is reached; retry later."""

    kind = "too_many"


class Forbidden(DomainError):
    kind = "forbidden"


class Unauthorized(DomainError):
    kind = "unauthorized"


class Retryable(DomainError):
    """The store is throttling or busy; the caller should retry after `retry_after` seconds."""

    kind = "unavailable"

    def __init__(self, message: str = "Service temporarily unavailable, retry later", retry_after: int = 2):
        super().__init__(message)
        self.retry_after = retry_after
