"""An ``LLMClient`` for any OpenAI-compatible endpoint (hosted, vLLM, llama.cpp server, Ollama).

It uses ``openai.AsyncOpenAI`` with ``base_url`` and does its own retry loop (the package's own
retries are off so every retry is counted): 429 (honouring ``Retry-After``, capped), timeouts,
connection errors and 5xx are retried with exponential backoff and seeded jitter,
``delay = min(backoff_s · 2^attempt, max_backoff_s) · U(0.5, 1)``; other 4xx fail at once.
Concurrency is bounded by a semaphore per event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import openai

from mining.llm.base import ClientBase, Completion, LLMError, LLMUnavailable, Request, Usage

T = TypeVar("T")
RETRYABLE = (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError)


@dataclass
class _LoopState:
    """The HTTP client and semaphore of one event loop (neither may cross loops)."""

    loop: asyncio.AbstractEventLoop
    client: openai.AsyncOpenAI
    slots: asyncio.Semaphore


class OpenAIClient(ClientBase):
    """Chat completions from an OpenAI-compatible server at ``base_url``.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        api_key: sent as a bearer token (local servers ignore it).
        timeout_s: per-request timeout.
        max_retries: retries after the first attempt before :class:`LLMUnavailable`.
        backoff_s: first backoff delay; doubles per retry, capped at ``max_backoff_s``.
        concurrency: requests in flight at most.
        use_json_schema: send a ``response_format`` when a schema is given.
        schema_format: how it is sent: ``"json_schema"`` (OpenAI, vLLM, Ollama) or ``"json_object"``
            (``{"type": "json_object", "schema": ...}``, what llama-cpp-python's server takes; it
            answers the ``json_schema`` form with HTTP 500).
        retry_after_cap_s: the longest ``Retry-After`` honoured.
        seed: seed of the jitter RNG.
        embedding_model: model for :meth:`embed` (default ``model``).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        timeout_s: float = 30.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        concurrency: int = 8,
        use_json_schema: bool = True,
        *,
        max_backoff_s: float = 8.0,
        retry_after_cap_s: float = 30.0,
        seed: int = 0,
        embedding_model: str | None = None,
        schema_format: Literal["json_schema", "json_object"] = "json_schema",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retry_after_cap_s = retry_after_cap_s
        self.concurrency = concurrency
        self.use_json_schema = use_json_schema
        self.embedding_model = embedding_model or model
        self.schema_format = schema_format
        self._rng = random.Random(seed)
        self._usage = Usage()
        self._n_supported: bool | None = None  # learnt from the first n>1 answer
        self._state: _LoopState | None = None

    @property
    def usage(self) -> Usage:
        return self._usage

    async def agenerate(self, request: Request) -> Completion:
        """``request.n`` samples: one call with ``n`` if the server honours it, else n calls."""
        if request.n == 1 or self._n_supported is False:
            parts = await asyncio.gather(*(self._chat(request, 1) for _ in range(request.n)))
            return _join(parts)
        first = await self._chat(request, request.n)
        if len(first.texts) >= request.n:
            self._n_supported = True
            return first
        self._n_supported = False
        more = request.n - len(first.texts)
        rest = await asyncio.gather(*(self._chat(request, 1) for _ in range(more)))
        return _join([first, *rest])

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """One embedding vector per text from the server's ``/embeddings``."""
        state = self._loop_state()
        response = await self._with_retries(
            lambda: state.client.embeddings.create(model=self.embedding_model, input=list(texts))
        )
        return [list(d.embedding) for d in response.data]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Sync form of :meth:`aembed`."""
        return self._run(self.aembed(texts))

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop (``complete()`` does this after each call)."""
        if self._state is not None:
            state, self._state = self._state, None
            await state.client.close()

    async def _chat(self, request: Request, n: int) -> Completion:
        state = self._loop_state()
        kwargs: dict[str, Any] = {"n": n} if n > 1 else {}
        if request.response_schema is not None and self.use_json_schema:
            kwargs["response_format"] = _response_format(self.schema_format, request.response_schema)
        response = await self._with_retries(
            lambda: state.client.chat.completions.create(
                model=self.model,
                messages=cast(Any, list(request.messages)),
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                **kwargs,
            )
        )
        usage = response.usage
        completion = Completion(
            [choice.message.content or "" for choice in response.choices],
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )
        self._usage.prompt_tokens += completion.prompt_tokens
        self._usage.completion_tokens += completion.completion_tokens
        return completion

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        state = self._loop_state()
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._usage.retries += 1
                await asyncio.sleep(self._delay(attempt - 1, last))
            async with state.slots:
                started = time.perf_counter()
                try:
                    result = await call()
                except RETRYABLE as exc:
                    last = exc
                    continue
                except openai.APIStatusError as exc:
                    self._usage.failures += 1
                    raise LLMError(
                        f"The LLM endpoint {self.base_url} rejected the request for model "
                        f"{self.model!r} (HTTP {exc.status_code}: {exc.message}). Check the model name, "
                        "the API key and the request parameters; retrying will not help."
                    ) from exc
                finally:
                    self._usage.seconds += time.perf_counter() - started
            self._usage.calls += 1
            return result
        self._usage.failures += 1
        raise LLMUnavailable(
            f"The LLM endpoint {self.base_url} did not answer after {self.max_retries + 1} attempts "
            f"(last error: {_describe(last)}). Check that the server is running and reachable "
            f"(e.g. `curl {self.base_url}/models`), or point the client at a live base_url, or use "
            "the replay client to rerun offline from recorded responses."
        ) from last

    def _delay(self, attempt: int, exc: Exception | None) -> float:
        if isinstance(exc, openai.RateLimitError):
            wait = _retry_after(exc)
            if wait is not None:
                return min(wait, self.retry_after_cap_s)
        return min(self.backoff_s * 2.0**attempt, self.max_backoff_s) * self._rng.uniform(0.5, 1.0)

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
            )
            self._state = _LoopState(loop, client, asyncio.Semaphore(self.concurrency))
        return self._state


def _join(parts: Sequence[Completion]) -> Completion:
    return Completion(
        [t for p in parts for t in p.texts],
        sum(p.prompt_tokens for p in parts),
        sum(p.completion_tokens for p in parts),
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (a number), else ``None``."""
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = exc.response.headers.get(header)
        if value is not None:
            try:
                seconds: float = max(0.0, float(value) / scale)
                return seconds
            except ValueError:
                continue
    return None


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if exc else "none"


def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
