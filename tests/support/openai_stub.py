"""A tiny OpenAI-compatible server for tests: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

It runs on 127.0.0.1 in a thread (stdlib ``ThreadingHTTPServer``) and answers from a script: each
chat request takes the next :class:`Reply` from the queue (or ``default`` when it is empty). It
records every request body and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``content`` as a string is repeated for each of the ``n`` choices asked for (one choice when
    ``ignore_n``); as a list it is exactly the choices returned. A non-200 ``status`` sends an
    OpenAI-style error body. ``delay_s`` sleeps before answering.
    """

    status: int = 200
    content: str | list[str] = "ok"
    prompt_tokens: int = 10
    completion_tokens: int = 5
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    ignore_n: bool = False


class OpenAIStub:
    """The scripted server; ``url`` is the ``base_url`` to give a client."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.replies: deque[Reply] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def count(self) -> int:
        """Chat completion requests received."""
        with self._lock:
            return len(self.bodies)

    def script(self, *replies: Reply) -> None:
        """Queue ``replies`` for the next chat requests, in order."""
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> OpenAIStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.replies.popleft() if self.replies else self.default

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def chat_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    """The ``chat.completion`` JSON for ``reply`` to ``request``."""
    if isinstance(reply.content, list):
        texts = reply.content
    else:
        texts = [reply.content] * (1 if reply.ignore_n else int(request.get("n") or 1))
    choices = [
        {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
        for i, t in enumerate(texts)
    ]
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub"),
        "choices": choices,
        "usage": usage,
    }


def embedding_body(request: dict[str, Any]) -> dict[str, Any]:
    """Deterministic 3-d vectors: (length, vowels, spaces) of each input."""
    texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": [len(t), sum(c in "aeiou" for c in t), t.count(" ")]}
        for i, t in enumerate(texts)
    ]
    usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
    return {"object": "list", "data": data, "model": request.get("model", "stub"), "usage": usage}


def _handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/v1/embeddings":
                self._send(200, embedding_body(body))
                return
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            reply = stub._next(body)
            try:
                time.sleep(reply.delay_s)
                if reply.status == 200:
                    self._send(200, chat_body(reply, body), reply.headers)
                else:
                    error = {"error": {"message": f"scripted {reply.status}", "type": "stub_error"}}
                    self._send(reply.status, error, reply.headers)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout)
            finally:
                stub._done()

    return Handler
