"""A stand-in for the Anthropic API on 127.0.0.1, for `cco run`'s proxy to forward to.

It speaks the Messages API as its documentation describes it (https://docs.anthropic.com/en/api/messages,
.../messages-streaming, .../errors): `POST /v1/messages` answers a `message` object, or with
`"stream": true` the server-sent events message_start, content_block_start, ping,
content_block_delta (one per word), content_block_stop, message_delta (with the output
tokens) and message_stop; `GET /v1/models` a list; errors are `{"type": "error", "error":
{"type": ..., "message": ...}}` with the documented status and type (401
authentication_error, 400 invalid_request_error, 429 rate_limit_error with retry-after, 500
api_error). A request without the key (`x-api-key`, or `Authorization: Bearer`, which this
SDK sends) or without `anthropic-version` is refused as the API refuses it.

Where it differs from the real API, on purpose: it answers at once with a fixed text, its
token counts are word counts, and the last user message steers it (`status 429`,
`status 500`, `sleep 3`, `size 400000` pads the answer to that many bytes, `chunked 65536`
sends a message in chunks of that many bytes with no length given, as a server that does not
know it up front, and `hold 1100000` makes such an answer wait after that many bytes); streams,
and answers told to, wait at `hold` (a threading.Event) until the test releases it, with
`holding` set meanwhile, so a test can prove the first part reached the client before the
upstream sent the rest. It keeps every request's method, path and headers, and counts them.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic

ANSWER = "The orchestra plays in tune."


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StandIn:
    """The server's state, shared with the test."""

    api_key: str
    seen: list[Seen] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str = "/v1/messages") -> int:
        with self.lock:
            return sum(1 for request in self.seen if request.path.split("?")[0] == path)


def directive(body: dict[str, Any], word: str) -> str | None:
    """`word VALUE` in the last user message's text, or None."""
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    words = str(content).split()
    for index, each in enumerate(words[:-1]):
        if each == word:
            return words[index + 1]
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, the client's delayed ACK
    # would add 40 ms to every answer, which the real API does not.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.record({})
        if self.refused():
            return
        if self.path.split("?")[0] == "/v1/models":
            models = [
                {
                    "type": "model",
                    "id": "claude-sonnet-4-5",
                    "display_name": "Claude Sonnet 4.5",
                    "created_at": "2025-09-29T00:00:00Z",
                }
            ]
            self.json(
                200,
                {"data": models, "has_more": False, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"},
            )
        else:
            self.error(404, "not_found_error", f"{self.path} is not a route")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        self.record(body)
        if self.refused():
            return
        if self.path.split("?")[0] != "/v1/messages":
            self.error(404, "not_found_error", f"{self.path} is not a route")
            return
        if not isinstance(body.get("model"), str) or not isinstance(body.get("max_tokens"), int):
            self.error(400, "invalid_request_error", "model and max_tokens are required")
            return
        if sleep := directive(body, "sleep"):
            time.sleep(float(sleep))
        if status := directive(body, "status"):
            kind = {"429": "rate_limit_error", "500": "api_error", "529": "overloaded_error"}.get(status, "api_error")
            self.error(int(status), kind, f"the stand-in was told to answer {status}")
            return
        text = ANSWER
        if size := directive(body, "size"):
            text = (ANSWER + " ") * (int(size) // (len(ANSWER) + 1) + 1)
        input_tokens = len(json.dumps(body.get("messages", [])).split())
        if body.get("stream"):
            self.stream(body["model"], text, input_tokens)
        elif chunk_size := directive(body, "chunked"):
            hold_after = directive(body, "hold")
            hold = int(hold_after) if hold_after else None
            self.chunked(message(body["model"], text, input_tokens), int(chunk_size), hold)
        else:
            self.json(200, message(body["model"], text, input_tokens))

    def record(self, body: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            state.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))

    def refused(self) -> bool:
        key = self.server.state.api_key
        if self.headers.get("x-api-key") != key and self.headers.get("authorization") != f"Bearer {key}":
            self.error(401, "authentication_error", "invalid x-api-key")
            return True
        if not self.headers.get("anthropic-version"):
            self.error(400, "invalid_request_error", "anthropic-version: header is required")
            return True
        return False

    def json(self, status: int, payload: Any, **headers: str) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_standin_{len(self.server.state.seen)}")
        if self.request_version == "HTTP/1.0" and self.headers.get("connection", "").lower() == "keep-alive":
            self.send_header("connection", "keep-alive")  # HTTP/1.0 keeps a connection only when told
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, kind: str, text: str) -> None:
        extra = {"retry_after": "1"} if status == 429 else {}
        self.json(status, {"type": "error", "error": {"type": kind, "message": text}}, **extra)

    def chunked(self, payload: Any, size: int, hold_after: int | None) -> None:
        """A 200 JSON answer in chunks of `size` bytes, with no content-length; waits at `hold`
        once `hold_after` bytes are out, if given."""
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for start in range(0, len(data), size):
            self.chunk(data[start : start + size])
            if hold_after is not None and start < hold_after <= start + size:
                self.wait_for_the_test()
        self.chunk(b"")

    def wait_for_the_test(self) -> None:
        state = self.server.state
        state.holding.set()
        state.hold.wait(timeout=30)
        state.holding.clear()

    def stream(self, model: str, text: str, input_tokens: int) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        words = text.split(" ")
        start = message(model, "", input_tokens)
        start["content"], start["stop_reason"] = [], None
        start["usage"]["output_tokens"] = 1
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        for position, word in enumerate(words):
            piece = word if position == 0 else " " + word
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(words)},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        first_delta = next(index for index, (name, _) in enumerate(events) if name == "content_block_delta")
        for index, (name, data) in enumerate(events):
            self.chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            if index == first_delta:
                # Until the test has read the first delta through the proxy.
                self.wait_for_the_test()
        self.chunk(b"")

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def message(model: str, text: str, input_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": len(text.split())},
    }


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections a benchmark opens 50 at a time.
    request_queue_size = 128

    def __init__(self, state: StandIn) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self.scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


def serve(api_key: str, certificate: Path | None = None) -> tuple[Server, StandIn]:
    """Starts the stand-in on a free port in a thread, over TLS with `certificate` (the server's
    certificate and key, PEM) when given; `server.shutdown()` stops it."""
    state = StandIn(api_key=api_key)
    server = Server(state)
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def client(proxy: int, **options: Any) -> anthropic.Anthropic:
    """The official SDK pointed at a proxy on 127.0.0.1:`proxy`, without a key of its own (the
    proxy adds ANTHROPIC_API_KEY), and without retries, so each call is one request."""
    headers: dict[str, Any] = {"Authorization": anthropic.Omit(), **options.pop("headers", {})}
    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{proxy}", api_key=None, default_headers=headers, max_retries=0, **options
    )
