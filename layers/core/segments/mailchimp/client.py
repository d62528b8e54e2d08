"""Mailchimp's Marketing API (3.0), the endpoints the audience sync uses, over plain HTTP (urllib):

- `GET  /lists/{list_id}/segments?type=static`          find the static segment (tag) by name
- `POST /lists/{list_id}/segments`                      create it (`static_segment: []`)
- `PATCH /lists/{list_id}/segments/{segment_id}`        rename it (the segment was renamed)
- `POST /lists/{list_id}`                               batch subscribe: create contacts, ≤ 500 a call
- `POST /lists/{list_id}/segments/{segment_id}`         `members_to_add` / `members_to_remove`, ≤ 500 each
- `GET  /lists/{list_id}/segments/{segment_id}/members` the segment's contacts (a full sync's removals)

Authentication is HTTP Basic with any user name and the API key. 429 and 5xx (and no answer) are
retried with segments.aws's backoff (honouring Retry-After), MAX_ATTEMPTS in all; then `Unavailable`
(the caller's message is retried by its queue). 401/403 and other 4xx are `Refused` (a
configuration problem: retrying does not help); 404 is `NotFound`, a `Refused` the caller may mend
(a static segment deleted in Mailchimp is made again). Nothing here logs a key or an email address.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segments import aws
from segments.mailchimp.credentials import Credentials
from segments.observability import logger

BATCH_MAX = 500  # members a batch subscribe, and members_to_add / members_to_remove a call, may hold
PAGE = 1_000  # Mailchimp's largest `count`
MAX_ATTEMPTS = 6
TIMEOUT = 10.0
NAME_MAX = 100  # a segment's name in Mailchimp


class MailchimpError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Mailchimp answered {status}: {detail}")
        self.status = status
        self.detail = detail


class Refused(MailchimpError):
    """401/403 (a bad key, or no access to the audience) or another 4xx: not worth retrying."""


class NotFound(Refused):
    """404: the audience or the segment does not exist (any more)."""


class Unavailable(MailchimpError):
    """429/5xx or no answer, still after MAX_ATTEMPTS."""


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


def call(
    creds: Credentials,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One API call, retried on 429/5xx; the JSON answer ({} for an empty one)."""
    url = creds.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    token = base64.b64encode(f"segments:{creds.api_key}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    last: MailchimpError | None = None
    hint: float | None = None  # the last answer's Retry-After
    for attempt in range(MAX_ATTEMPTS):
        if attempt and hint is not None:
            aws.backoff(0, base=min(hint, 30.0), cap=30.0, jitter=False)
        elif attempt:
            aws.backoff(attempt, base=0.5, cap=20.0)
        hint = None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only (Credentials.base_url)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - as above
                text = response.read().decode() or "{}"
                return dict(json.loads(text))
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code == 429 or exc.code >= 500:
                last, hint = Unavailable(exc.code, detail), _retry_after(exc.headers)
            elif exc.code == 404:
                raise NotFound(exc.code, detail) from exc
            else:
                raise Refused(exc.code, detail) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = Unavailable(0, f"no answer ({type(exc).__name__})")
        logger.warning(
            "mailchimp call retried",
            extra={"method": method, "path": _safe(path), "status": last.status, "attempt": attempt + 1},
        )
    assert last is not None
    raise last


def _safe(path: str) -> str:
    """The path without a query (which never holds a key or an email here anyway)."""
    return path.split("?", 1)[0]


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode() or "{}")
        return str(body.get("detail") or body.get("title") or exc.reason)
    except (ValueError, OSError):
        return str(exc.reason)


# ------------------------------------------------------------------ the endpoints


def find_static_segment(creds: Credentials, name: str) -> str | None:
    """The id of the audience's static segment named `name` (case-sensitive, as Mailchimp shows it)."""
    offset = 0
    while True:
        page = call(
            creds,
            "GET",
            f"/lists/{creds.audience_id}/segments",
            query={
                "type": "static",
                "count": PAGE,
                "offset": offset,
                "fields": "segments.id,segments.name,total_items",
            },
        )
        for segment in page.get("segments") or []:
            if segment.get("name") == name:
                return str(segment["id"])
        offset += PAGE
        if offset >= int(page.get("total_items") or 0):
            return None


def create_static_segment(creds: Credentials, name: str) -> str:
    made = call(creds, "POST", f"/lists/{creds.audience_id}/segments", {"name": name, "static_segment": []})
    return str(made["id"])


def rename_segment(creds: Credentials, segment_id: str, name: str) -> None:
    call(creds, "PATCH", f"/lists/{creds.audience_id}/segments/{segment_id}", {"name": name})


def subscribe(creds: Credentials, members: Sequence[tuple[str, Mapping[str, str]]]) -> dict[str, int]:
    """Batch subscribe ≤ 500 (email, merge fields): new contacts get the org's `status_if_new`;
    existing ones are left as they are (`update_existing: false`: their subscription status is
    never changed by a sync). Counts: created, existing, rejected."""
    assert len(members) <= BATCH_MAX
    answer = call(
        creds,
        "POST",
        f"/lists/{creds.audience_id}",
        {
            "members": [
                {"email_address": email, "status": creds.status_if_new, "merge_fields": dict(merge)}
                for email, merge in members
            ],
            "update_existing": False,
        },
    )
    errors = answer.get("errors") or []
    existing = sum(1 for e in errors if e.get("error_code") == "ERROR_CONTACT_EXISTS")
    return {
        "created": int(answer.get("total_created") or 0),
        "existing": existing,
        "rejected": len(errors) - existing,
    }


def change_segment(creds: Credentials, segment_id: str, add: Sequence[str], remove: Sequence[str]) -> dict[str, int]:
    """Add and remove ≤ 500 emails each in one call; counts added, removed, errors."""
    assert len(add) <= BATCH_MAX and len(remove) <= BATCH_MAX
    answer = call(
        creds,
        "POST",
        f"/lists/{creds.audience_id}/segments/{segment_id}",
        {"members_to_add": list(add), "members_to_remove": list(remove)},
    )
    return {
        "added": int(answer.get("total_added") or 0),
        "removed": int(answer.get("total_removed") or 0),
        "errors": int(answer.get("error_count") or 0),
    }


def segment_emails(creds: Credentials, segment_id: str) -> Iterator[str]:
    """Every email address in the static segment, a page (1,000) a call."""
    offset = 0
    while True:
        page = call(
            creds,
            "GET",
            f"/lists/{creds.audience_id}/segments/{segment_id}/members",
            query={"count": PAGE, "offset": offset, "fields": "members.email_address,total_items"},
        )
        members = page.get("members") or []
        for member in members:
            yield str(member["email_address"])
        offset += PAGE
        if not members or offset >= int(page.get("total_items") or 0):
            return
