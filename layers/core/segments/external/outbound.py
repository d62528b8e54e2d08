"""Outbound HTTP to a customer's URL (webhook deliveries), refusing what could reach inside.

`check_url` refuses, at registration and again before every POST (DNS can change): a scheme other
than https (http too, unless private URLs are allowed), a URL with credentials, and a host that
resolves to any address that is not public: loopback, link-local (169.254.0.0/16, the metadata
service), private, shared, multicast, reserved, unspecified, or IPv6 equivalents (an IPv4-mapped
address is judged as the IPv4 it maps). `post` connects to the very address it checked (no second
lookup a rebinding DNS could answer differently), follows no redirect (a 3xx is just a failed
attempt), reads at most RESPONSE_CAP bytes of the answer, and gives up when `timeout` has passed
since it started, whether connecting, sending or reading.

With `allow_private` (WEBHOOK_ALLOW_PRIVATE_URLS: the local stack and the tests only) http and
every address are allowed, so a receiver on 127.0.0.1 can be reached.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

RESPONSE_CAP = 4096  # bytes of a receiver's answer that are read (and kept, cut to ERROR_TEXT)
ERROR_TEXT = 256
URL_MAX = 2048


class Refused(ValueError):
    """A URL that may not be delivered to; the message says why (safe to show)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked IP the connection goes to


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (timeout, refused connection, TLS failure)
    latency_ms: int
    error: str | None  # why the attempt failed (None: a 2xx)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> Target | None:
    """The target of `url`, or Refused saying why. Without `resolve` only the form is checked (and
    None returned)."""
    if len(url) > URL_MAX:
        raise Refused(f"url must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("url is not a valid URL") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        raise Refused("url must use " + (" or ".join(allowed)))
    if parts.username is not None or parts.password is not None:
        raise Refused("url must not hold credentials")
    host = parts.hostname
    if not host:
        raise Refused("url has no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = port or (443 if scheme == "https" else 80)
    literal = _literal(host)
    if literal is not None and not allow_private and not _public(literal):
        raise Refused("url must not point to a private, loopback or link-local address")
    if not resolve:
        return None
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused("url's host does not resolve") from exc
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise Refused("url's host does not resolve")
    if not allow_private and not all(_public(a) for a in addresses):
        raise Refused("url must not resolve to a private, loopback or link-local address")
    return Target(scheme, host, port, path, addresses[0])


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class _Pinned(http.client.HTTPConnection):
    """A connection to the checked address, whatever the host name resolves to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        sock = socket.create_connection((self.target.address, self.target.port), self.timeout)
        if self.target.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.target.host)
        self.sock = sock


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One POST to `target`; never raises for what the receiver does."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    conn = _Pinned(target, timeout)
    try:
        conn.connect()
        for step in ("send", "answer"):
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise TimeoutError
            if conn.sock is not None:
                conn.sock.settimeout(left)
            if step == "send":
                conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        remaining = RESPONSE_CAP
        while remaining > 0:  # the answer is read within the same deadline, and only so far
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise TimeoutError
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = response.read1(remaining)
            if not chunk:
                break
            remaining -= len(chunk)
        status = response.status
    except TimeoutError:
        return Answer(None, elapsed_ms(), f"no answer within {timeout:g} s", timed_out=True)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, elapsed_ms(), f"connection failed: {type(exc).__name__}")
    finally:
        conn.close()
    if 200 <= status < 300:
        return Answer(status, elapsed_ms(), None)
    reason = "redirect not followed" if 300 <= status < 400 else f"HTTP {status}"
    return Answer(status, elapsed_ms(), reason)
