"""A local Mailchimp Marketing API (3.0) for the tests and the local stack: exactly the endpoints the
audience sync calls (segments/mailchimp/client.py), keeping state (each audience's contacts, its static
segments and their members), on 127.0.0.1 only.

    python -m tools.mailchimp_server --port 8090     # any key ending -<dc>, audiences made on first use

`MailchimpServer(audiences={"aud-1": "key-us6"})` accepts only those keys, each for its audience (401
otherwise, 404 for an unknown audience). `fail(status, times)` answers the next calls with that status
(429 with Retry-After: 0), and `requests` records (method, path) of every call, answered or not.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BATCH_MAX = 500


@dataclass
class Audience:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case email -> contact
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {id, name, type, members: set}

    def segment_named(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.segments.values() if s["name"] == name), None)


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class MailchimpServer:
    def __init__(self, port: int = 0, audiences: dict[str, str] | None = None, *, stop_after: float | None = None):
        self.keys = None if audiences is None else {key: aud for aud, key in audiences.items()}
        self.audiences: dict[str, Audience] = {aud: Audience() for aud in (audiences or {})}
        self.requests: list[tuple[str, str]] = []
        self._faults: list[int] = []
        self._ids = itertools.count(1001)
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._timer = threading.Timer(stop_after, self.stop) if stop_after else None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/3.0"

    def start(self) -> MailchimpServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mailchimp-server", daemon=True)
        self._thread.start()
        if self._timer:
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> MailchimpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------- for tests
    def fail(self, status: int, times: int = 1) -> None:
        with self.lock:
            self._faults += [status] * times

    def segment_members(self, audience: str, name: str) -> set[str]:
        """The emails (lower case) of the audience's static segment `name`; empty if there is none."""
        with self.lock:
            found = self.audiences.get(audience, Audience()).segment_named(name)
            return set(found["members"]) if found else set()

    def segments_named(self, audience: str, name: str) -> int:
        with self.lock:
            return sum(s["name"] == name for s in self.audiences.get(audience, Audience()).segments.values())

    def contact(self, audience: str, email: str) -> dict[str, Any] | None:
        with self.lock:
            return self.audiences.get(audience, Audience()).members.get(email.lower())

    # -------------------------------------------------------- the API
    def answer(self, method: str, path: str, query: dict[str, str], key: str | None, body: Any) -> Any:
        with self.lock:
            self.requests.append((method, path))
            if self._faults:
                status = self._faults.pop(0)
                raise Problem(status, "Injected", f"an injected {status}")
            parts = path.strip("/").split("/")
            if parts[:2] != ["3.0", "lists"] or len(parts) < 3:
                raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
            audience = self._audience(parts[2], key)
            route = (method, len(parts))
            if route == ("POST", 3):
                return _subscribe(audience, body)
            if parts[3:4] != ["segments"]:
                raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
            if route == ("GET", 4):
                return _list_segments(audience, query)
            if route == ("POST", 4):
                return self._create_segment(audience, body)
            segment = audience.segments.get(parts[4])
            if segment is None:
                raise Problem(404, "Resource Not Found", "The requested segment could not be found.")
            if route == ("PATCH", 5):
                segment["name"] = str(body["name"])
                return _render(segment)
            if route == ("POST", 5):
                return _change(audience, segment, body)
            if route == ("GET", 6) and parts[5] == "members":
                return _segment_members(audience, segment, query)
            raise Problem(405, "Method Not Allowed", f"{method} {path}")

    def _audience(self, list_id: str, key: str | None) -> Audience:
        if key is None or not re.search(r"-[a-z]+\d+$", key):
            raise Problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        if self.keys is None:
            return self.audiences.setdefault(list_id, Audience())
        if key not in self.keys:
            raise Problem(401, "API Key Invalid", "Your API key may be invalid.")
        if self.keys[key] != list_id or list_id not in self.audiences:
            raise Problem(404, "Resource Not Found", "The requested resource could not be found.")
        return self.audiences[list_id]

    def _create_segment(self, audience: Audience, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("name") or "static_segment" not in body:
            raise Problem(400, "Invalid Resource", "name and static_segment are required")
        segment_id = str(next(self._ids))
        emails = {str(e).lower() for e in body["static_segment"] if str(e).lower() in audience.members}
        audience.segments[segment_id] = {
            "id": segment_id,
            "name": str(body["name"]),
            "type": "static",
            "members": emails,
        }
        return _render(audience.segments[segment_id])


def _render(segment: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(segment["id"]),
        "name": segment["name"],
        "type": segment["type"],
        "member_count": len(segment["members"]),
    }


def _page(query: dict[str, str]) -> tuple[int, int]:
    return int(query.get("offset", 0)), min(1000, int(query.get("count", 10)))


def _list_segments(audience: Audience, query: dict[str, str]) -> dict[str, Any]:
    found = [s for s in audience.segments.values() if query.get("type") in (None, s["type"])]
    offset, count = _page(query)
    return {"segments": [_render(s) for s in found[offset : offset + count]], "total_items": len(found)}


def _subscribe(audience: Audience, body: dict[str, Any]) -> dict[str, Any]:
    members = body.get("members") or []
    if len(members) > BATCH_MAX:
        raise Problem(400, "Invalid Resource", f"at most {BATCH_MAX} members a call")
    created, updated, errors = [], [], []
    for member in members:
        email = str(member.get("email_address") or "")
        low = email.lower()
        if "@" not in email:
            errors.append({"email_address": email, "error": "invalid email", "error_code": "ERROR_GENERIC"})
        elif low in audience.members:
            if body.get("update_existing"):
                audience.members[low].update(status=member["status"], merge_fields=member.get("merge_fields") or {})
                updated.append({"email_address": email})
            else:
                errors.append(
                    {"email_address": email, "error": "already a list member", "error_code": "ERROR_CONTACT_EXISTS"}
                )
        else:
            contact = {
                "id": hashlib.md5(low.encode()).hexdigest(),
                "email_address": email,
                "status": member["status"],
                "merge_fields": member.get("merge_fields") or {},
            }
            audience.members[low] = contact
            created.append(contact)
    return {
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": len(created),
        "total_updated": len(updated),
        "error_count": len(errors),
    }


def _change(audience: Audience, segment: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    add, remove = list(body.get("members_to_add") or []), list(body.get("members_to_remove") or [])
    if len(add) > BATCH_MAX or len(remove) > BATCH_MAX:
        raise Problem(400, "Invalid Resource", f"at most {BATCH_MAX} members_to_add and members_to_remove")
    added, removed, errors = [], [], []
    for email in add:
        low = str(email).lower()
        if low not in audience.members:
            errors.append({"email_addresses": [email], "error": "Email address is not subscribed to the list"})
        elif low not in segment["members"]:
            segment["members"].add(low)
            added.append(audience.members[low])
    for email in remove:
        low = str(email).lower()
        if low in segment["members"]:
            segment["members"].discard(low)
            removed.append(audience.members[low])
    return {
        "members_added": added,
        "members_removed": removed,
        "errors": errors,
        "total_added": len(added),
        "total_removed": len(removed),
        "error_count": len(errors),
    }


def _segment_members(audience: Audience, segment: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    emails = sorted(segment["members"])
    offset, count = _page(query)
    return {"members": [audience.members[e] for e in emails[offset : offset + count]], "total_items": len(emails)}


def _handler(server: MailchimpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                result = server.answer(self.command, url.path, query, _key(self.headers.get("Authorization")), body)
                self._send(200, result)
            except Problem as exc:
                headers = {"Retry-After": "0"} if exc.status == 429 else {}
                self._send(exc.status, {"title": exc.title, "status": exc.status, "detail": exc.detail}, headers)
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"title": "Invalid Resource", "status": 400, "detail": str(exc)})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status < 400 else "application/problem+json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[2] or None
        except ValueError:
            return None
    return value if scheme.lower() in ("apikey", "bearer") else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mailchimp_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--stop-after", type=float, default=None, metavar="SECONDS")
    args = parser.parse_args(argv)
    server = MailchimpServer(args.port, stop_after=args.stop_after)
    print(f"local Mailchimp on {server.base_url} (MAILCHIMP_BASE_URL); Ctrl-C stops it", flush=True)
    server.start()
    try:
        while server._thread and server._thread.is_alive():
            server._thread.join(0.5)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
