"""Calls over real HTTP to a running local stack, and the gateway's request-id headers."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def assert_gateway_ids(reply: Reply) -> str:
    """Every gateway response carries the request id in both header forms."""
    request_id = reply.headers["x-amzn-RequestId"]
    assert reply.headers["x-api-request-id"] == "req_" + request_id.replace("-", "")
    return request_id
