"""A small JSON-over-HTTP server on 127.0.0.1, on a free port, for the stand-ins (Jira, GuardDuty)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Serve = Callable[[BaseHTTPRequestHandler, str], None]


class LoopbackServer:
    """Serves GET and POST with `serve(request, method)` on its own threads until stopped."""

    def __init__(self, serve: Serve) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                serve(self, "GET")

            def do_POST(self) -> None:
                serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def read_json(request: BaseHTTPRequestHandler, empty: Any = None) -> Any:
    length = int(request.headers.get("Content-Length") or 0)
    return json.loads(request.rfile.read(length) or b"null") if length else empty


def answer_json(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    data = json.dumps(payload).encode()
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up waiting (a test of timeouts): nothing to answer to
