"""The gateway behind a real HTTP server (loopback by default), one thread per connection."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.local_stack.gateway import MAX_BODY_BYTES, Gateway
from tools.local_stack.routing import Request

log = logging.getLogger("local_stack")


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SegmentsLocal/1"
    gateway: Gateway  # set on the subclass made per stack

    def _read_body(self) -> bytes:
        """At most MAX_BODY_BYTES + 1 bytes are kept; the rest is read and dropped."""
        limit = MAX_BODY_BYTES + 1
        kept = bytearray()

        def take(n: int) -> None:
            while n > 0:
                chunk = self.rfile.read(min(n, 1 << 16))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-body")
                n -= len(chunk)
                if len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])

        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                take(size)
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
        else:
            take(int(self.headers.get("Content-Length") or 0))
        return bytes(kept)

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        request = Request(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        response = self.gateway.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.monotonic() - started) * 1000
        log.info("%s %s %d %.0fms %s", self.command, self.path, response.status, elapsed, response.request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once (the default backlog is 5)


def serve(gateway: Gateway, host: str, port: int) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve `gateway` on host:port (0: a free port) from a daemon thread; `shutdown()` stops it."""
    handler = type("Handler", (_HttpHandler,), {"gateway": gateway})
    httpd = _Server((host, port), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="local-api", daemon=True)
    thread.start()
    return httpd, thread
