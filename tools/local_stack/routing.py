"""The request and response of the gateway, and API Gateway's choice of a route for a path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from tools import cfn


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: str  # path and query, as received
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str = ""


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    """The last value of a header (names compare case-insensitively)."""
    value = None
    for key, item in headers:
        if key.lower() == name.lower():
            value = item
    return value


def short_id(seed: str, length: int) -> str:
    """A stable id of API Gateway's shape (lower case letters and digits) derived from `seed`."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    out = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        out.append(alphabet[index])
    return "".join(out)


def path_segments(path: str) -> list[str]:
    return [unquote(part) for part in path.split("/") if part]


def _match_path(template_path: str, parts: list[str]) -> dict[str, str] | None:
    """Path parameters when `parts` fit the template path ({name}, greedy {name+} last)."""
    params: dict[str, str] = {}
    template_parts = path_segments(template_path)
    for i, part in enumerate(template_parts):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(parts):
                return None
            params[part[1:-2]] = "/".join(parts[i:])
            return params
        if i >= len(parts):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = parts[i]
        elif part != parts[i]:
            return None
    return params if len(template_parts) == len(parts) else None


def _specificity(template_path: str) -> tuple[int, ...]:
    """Static parts beat {param}, which beats a greedy {proxy+}."""
    return tuple(0 if p.endswith("+}") else 1 if p.startswith("{") else 2 for p in path_segments(template_path))


class Router:
    def __init__(self, routes: list[cfn.Route], api_order: list[str]) -> None:
        self.routes = routes
        self.api_order = api_order

    def match(self, method: str, path: str) -> tuple[cfn.Route, dict[str, str]] | None:
        """API Gateway's choice: the most specific resource first, then its method (before ANY)."""
        parts = path_segments(path)
        candidates = [(r, p) for r in self.routes if (p := _match_path(r.path, parts)) is not None]
        if not candidates:
            return None
        best = max(_specificity(r.path) for r, _ in candidates)
        on_resource = [(r, p) for r, p in candidates if _specificity(r.path) == best]
        for wanted in (method, "ANY"):
            for route, params in on_resource:
                if route.method == wanted:
                    return route, params
        return None

    def api_for(self, path: str) -> str:
        """The API of an unrouted path: the one whose routes share the longest path prefix."""
        parts = path_segments(path)

        def shared(route: cfn.Route) -> int:
            count = 0
            for mine, theirs in zip(path_segments(route.path), parts, strict=False):
                if mine != theirs and not mine.startswith("{"):
                    break
                count += 1
            return count

        best_api, best = self.api_order[0], 0
        for api in self.api_order:
            score = max((shared(r) for r in self.routes if r.api == api), default=0)
            if score > best:
                best_api, best = api, score
        return best_api
