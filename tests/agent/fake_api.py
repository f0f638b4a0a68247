"""A scripted Messages API on loopback: real HTTP, spoken to by the real `anthropic` SDK.

    with FakeMessagesAPI([fault(429), tool_reply(tool_use("bash", {"command": "ls"})), submit_reply()]) as api:
        config = ClaudeConfig(base_url=api.url, ...)

Each POST /v1/messages consumes the next script item: a reply (a Messages API response body), a
Fault (an HTTP error with the API's error body, a dropped connection, or a slow answer), or a
callable that receives the request body and returns one of those. Every request is kept, with its
headers, for assertions.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ids = itertools.count(1)


@dataclass
class Fault:
    status: int | None = None
    """HTTP status to answer with; None with drop=True closes the connection instead."""
    drop: bool = False
    delay_s: float = 0.0
    """Wait this long before answering (with `then`, or the status)."""
    then: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"retry-after-ms": "10"})


def fault(status: int, **headers: str) -> Fault:
    return Fault(status=status, headers=headers or {"retry-after-ms": "10"})


def dropped() -> Fault:
    return Fault(drop=True)


def usage(
    input_tokens: int = 100, output_tokens: int = 20, cache_read: int = 0, cache_write: int = 0
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def tool_use(name: str, tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": tool_input}


def reply(*blocks: dict[str, Any], stop_reason: str | None = None, **usage_fields: int) -> dict[str, Any]:
    has_tool = any(block["type"] == "tool_use" for block in blocks)
    return {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": list(blocks),
        "stop_reason": stop_reason or ("tool_use" if has_tool else "end_turn"),
        "stop_sequence": None,
        "usage": usage(**usage_fields),
    }


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": content}


def tool_reply(*uses: dict[str, Any], **usage_fields: int) -> dict[str, Any]:
    return reply(text("Let me look."), *uses, **usage_fields)


def submit_reply(
    rationale: str = "no change needed", effect: str = "same metric", **usage_fields: int
) -> dict[str, Any]:
    return reply(tool_use("submit", {"rationale": rationale, "expected_effect": effect}), **usage_fields)


Script = list[dict[str, Any] | Fault | Callable[[dict[str, Any]], "dict[str, Any] | Fault"]]


class FakeMessagesAPI:
    def __init__(self, script: Script) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any]) -> dict[str, Any] | Fault:
        with self._lock:
            if not self.script:
                return Fault(status=400, then={"message": "fake API: the script is exhausted"})
            item = self.script.pop(0)
        return item(body) if callable(item) else item

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with api._lock:
                    api.requests.append(body)
                    api.headers.append({k.lower(): v for k, v in self.headers.items()})
                answer = api._next(body)
                if isinstance(answer, Fault):
                    self._fault(answer)
                else:
                    self._send(200, answer)

            def _fault(self, spec: Fault) -> None:
                if spec.delay_s:
                    time.sleep(spec.delay_s)
                if spec.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if spec.status is None:
                    self._send(200, spec.then or {})
                    return
                message = (spec.then or {}).get("message", f"fake fault {spec.status}")
                error = {
                    "type": "error",
                    "error": {"type": ERROR_TYPES.get(spec.status, "api_error"), "message": message},
                }
                self._send(spec.status, error, spec.headers)

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have timed out and gone
                    self.wfile.write(data)

        return Handler
