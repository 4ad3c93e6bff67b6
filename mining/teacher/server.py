"""The world's teacher over HTTP: an OpenAI-compatible chat-completions server on the stdlib.

It stands in for a hosted LLM the machines cannot reach, and speaks its protocol, so the mining
job's ``openai`` client cannot tell it from a real endpoint. Answers come from
:func:`mining.teacher.respond.answer` (ground truth + the noise model of ``noise.py``).

Endpoints
- ``POST /v1/chat/completions``: ``model`` (echoed), ``messages`` (string content or text parts),
  ``n`` (1-128), ``temperature`` (0-2, default 1 as in the OpenAI API), ``max_tokens`` (content
  cut to that many whitespace tokens, ``finish_reason: "length"``), ``seed`` (joins the noise
  key), ``response_format`` (accepted, logged, otherwise ignored). The reply has the OpenAI shape;
  ``usage`` counts whitespace tokens.
- ``GET /v1/models``: the one model, ``model`` (any name is answered, though).
- Bad requests get 400 with ``{"error": {"message", "type", "param", "code"}}``; unknown paths
  404. With ``rate_limit_every=k`` every k-th chat request gets 429 with ``Retry-After: 0``;
  ``latency_s`` sleeps before each chat answer (simulated model latency).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from mining.prompts import Message
from mining.teacher.knowledge import TeacherKnowledge
from mining.teacher.noise import NoiseConfig
from mining.teacher.respond import answer

log = logging.getLogger("mokg.teacher")
MODEL = "mokg-teacher"
MAX_N = 128


class BadRequest(Exception):
    """A request the OpenAI API would refuse with 400; the message says what to fix."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 resets connections under concurrent clients


class TeacherServer:
    """The teacher on ``host:port`` (port 0 picks a free one).

    Args:
        world_or_ontology_dir: an ontology directory, a world directory (its ontology must be the
            shipped one) or None for the shipped ontology.
        host, port: where to listen.
        noise: the noise model (zero noise by default).
        latency_s: seconds slept before each chat answer.
        rate_limit_every: every k-th chat request is refused with 429 (0 = never).
        model: the model name ``/v1/models`` lists (default: ``noise.model_id()``, one per noise config,
            so a response cache keyed on the model never serves one level's answers to another).
    """

    def __init__(
        self,
        world_or_ontology_dir: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        noise: NoiseConfig | None = None,
        latency_s: float = 0.0,
        rate_limit_every: int = 0,
        model: str | None = None,
    ) -> None:
        self.source = world_or_ontology_dir
        self.noise = noise or NoiseConfig()
        self.latency_s = latency_s
        self.rate_limit_every = rate_limit_every
        self.model = model or self.noise.model_id(MODEL)
        self.requests = 0
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self._address = (host, port)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._knowledge: TeacherKnowledge | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def knowledge(self) -> TeacherKnowledge:
        if self._knowledge is None:
            self._knowledge = TeacherKnowledge.load(self.source)
        return self._knowledge

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` once bound."""
        if self._server is None:
            raise RuntimeError("the teacher is not bound yet; call start() or serve_forever()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def _bind(self) -> ThreadingHTTPServer:
        if self._server is None:
            _ = self.knowledge  # load before the first request, not inside it
            self._server = _Server(self._address, _handler(self))
            self._server.daemon_threads = True
        return self._server

    def start(self) -> str:
        """Serve in a background thread; return the base URL."""
        server = self._bind()
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self.base_url

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI's ``mokg teacher serve``)."""
        server = self._bind()
        log.info("teacher at %s (noise %s)", self.base_url, self.noise)
        try:
            server.serve_forever(0.2)
        finally:
            server.server_close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TeacherServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def count(self) -> int:
        """Take a request number (1-based) under the lock."""
        with self._lock:
            self.requests += 1
            return self.requests

    def complete(self, body: Any) -> dict[str, Any]:
        """The chat-completion reply to a parsed request body (raises :class:`BadRequest`)."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        messages = _messages(body.get("messages"))
        n = _number(body, "n", 1, int, 1, MAX_N)
        temperature = _number(body, "temperature", 1.0, float, 0.0, 2.0)
        max_tokens = _number(body, "max_tokens", None, int, 1, 10**6)
        seed = _number(body, "seed", None, int, -(2**63), 2**63 - 1)
        model = body.get("model", self.model)
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' must be a non-empty string", "model")
        texts = answer(
            messages,
            n=n,
            temperature=temperature,
            knowledge=self.knowledge,
            noise=self.noise,
            request_seed=seed,
        )
        choices = [_choice(i, text, max_tokens) for i, text in enumerate(texts)]
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        completion = sum(len(c["message"]["content"].split()) for c in choices)
        fmt = body.get("response_format")
        fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
        self.log.append({"model": model, "n": n, "temperature": temperature, "response_format": fmt_type})
        return {
            "id": f"chatcmpl-teacher-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }

    def models(self) -> dict[str, Any]:
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "mokg-world"}
        return {"object": "list", "data": [entry]}


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects", "messages")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a string 'role'", "messages")
        content = msg.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise BadRequest(f"messages[{i}].content must be a string or a list of text parts", "messages")
        out.append({"role": msg["role"], "content": content})
    return out


def _number(body: dict[str, Any], name: str, default: Any, kind: type, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (kind is int and value != int(value)) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a {kind.__name__} in [{low}, {high}], got {value!r}", name)
    return kind(value)


def _choice(index: int, text: str, max_tokens: int | None) -> dict[str, Any]:
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    cut = max_tokens is not None and len(ends) > max_tokens
    content = text[: ends[max_tokens - 1]] if max_tokens is not None and cut else text
    return {
        "index": index,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "length" if cut else "stop",
        "logprobs": None,
    }


def _error(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _handler(teacher: TeacherServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # no Nagle: headers and body go out as separate small writes
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, teacher.models())
            else:
                self._send(404, _error(f"unknown path {self.path}; try /v1/models", "invalid_request_error"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                msg = f"unknown path {self.path}; the teacher serves /v1/chat/completions"
                self._send(404, _error(msg, "invalid_request_error"))
                return
            number = teacher.count()
            if teacher.rate_limit_every and number % teacher.rate_limit_every == 0:
                msg = "rate limit reached (simulated); retry after 0 s"
                self._send(429, _error(msg, "rate_limit_error"), {"Retry-After": "0"})
                return
            try:
                reply = teacher.complete(json.loads(raw or b"null"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._send(400, _error(f"the body is not valid JSON: {exc}", "invalid_request_error"))
                return
            except BadRequest as exc:
                self._send(400, _error(str(exc), "invalid_request_error", exc.param))
                return
            except Exception:
                log.exception("teacher failed on request %d", number)
                self._send(500, _error("the teacher failed; see its log", "server_error"))
                return
            if teacher.latency_s:
                time.sleep(teacher.latency_s)
            self._send(200, reply)

    return Handler
